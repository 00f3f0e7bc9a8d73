package econnecttest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
)

func ExampleNewServer() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-7", "s3cret")
	client := srv.Client()

	// Log in: JSON credentials in, a JWT out.
	resp, err := client.Post(srv.URL+"/api/v1/authenticate", "application/json",
		strings.NewReader(`{"username":"camera-7","password":"s3cret"}`))
	if err != nil {
		log.Fatal(err)
	}
	var login struct{ Username, Token string }
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in as", login.Username)

	// Call a protected endpoint with the token.
	req, err := http.NewRequest("POST", srv.URL+"/api/v1/faceEdge/publish", strings.NewReader(
		`{"expanded":"aGVsbG8=","detectorName":"cam-7","ianaTimeZone":"UTC","detectTimeUtc":"2025-01-01T12:00:00Z"}`))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+login.Token)
	resp, err = client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("publish:", resp.Status)
	fmt.Printf("%+v\n", srv.Stats())
	// Output:
	// logged in as camera-7
	// publish: 200 OK
	// {Logins:1 Renewals:0 Refused:0 APICalls:1 Connections:1}
}

func ExampleNewUnstartedServer() {
	// An on-premise server has no /identities prefix.
	srv := econnecttest.NewUnstartedServer()
	srv.Prefix = ""
	srv.Start()
	defer srv.Close()
	srv.AddUser("camera-7", "s3cret")

	resp, err := srv.Client().Post(srv.URL+"/api/v1/authenticate", "application/json",
		strings.NewReader(`{"username":"camera-7","password":"s3cret"}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("login at", resp.Request.URL.Path+":", resp.Status)
	// Output:
	// login at /api/v1/authenticate: 200 OK
}

func ExampleServer_FailLogin() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-7", "s3cret")

	// The next two logins fail, then the server answers normally again.
	srv.FailLogin(2, econnecttest.Fault{Status: http.StatusServiceUnavailable})
	for range 3 {
		resp, err := srv.Client().Post(srv.URL+"/api/v1/authenticate", "application/json",
			strings.NewReader(`{"username":"camera-7","password":"s3cret"}`))
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	fmt.Println("logins:", srv.Stats().Logins)
	// Output:
	// 503 Service Unavailable
	// 503 Service Unavailable
	// 200 OK
	// logins: 3
}

func ExampleServer_Handle() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-7", "s3cret")

	// A handler of your own, behind the server's bearer check.
	srv.Handle("GET /api/v1/people/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "person %s", r.PathValue("id"))
	}))

	resp, err := srv.Client().Get(srv.URL + "/api/v1/people/42")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("without a token:", resp.Status)

	resp, err = srv.Client().Post(srv.URL+"/api/v1/authenticate", "application/json",
		strings.NewReader(`{"username":"camera-7","password":"s3cret"}`))
	if err != nil {
		log.Fatal(err)
	}
	var login struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}

	req, err := http.NewRequest("GET", srv.URL+"/api/v1/people/42", nil)
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+login.Token)
	resp, err = srv.Client().Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("with a token:", resp.Status, string(body))
	// Output:
	// without a token: 401 Unauthorized
	// with a token: 200 OK person 42
}

func ExampleServer_SetChaos() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-7", "s3cret")
	login := func() *http.Response {
		resp, err := srv.Client().Post(srv.URL+"/api/v1/authenticate", "application/json",
			strings.NewReader(`{"username":"camera-7","password":"s3cret"}`))
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// An outage: every login and renewal is answered 503, with a Retry-After.
	srv.SetChaos(econnecttest.Chaos{Faults: []econnecttest.Chance{{
		P:     1,
		Fault: econnecttest.Fault{Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"2"}}},
	}}})
	resp := login()
	fmt.Println(resp.Status, "retry after", resp.Header.Get("Retry-After"))

	// The server is back.
	srv.SetChaos(econnecttest.Chaos{})
	fmt.Println(login().Status)

	// 60 % of the calls fail at random. The same seed draws the same
	// faults, so the count is the same on every run.
	srv.SetChaos(econnecttest.Chaos{Seed: 1, Faults: []econnecttest.Chance{
		{P: 0.6, Fault: econnecttest.Fault{Status: http.StatusServiceUnavailable}},
	}})
	failed := 0
	for range 100 {
		if login().StatusCode == http.StatusServiceUnavailable {
			failed++
		}
	}
	fmt.Println("failed:", failed, "of 100")
	// Output:
	// 503 Service Unavailable retry after 2
	// 200 OK
	// failed: 58 of 100
}

func ExampleStore() {
	store := econnecttest.NewStore()
	defer store.Close()
	ctx := context.Background()
	store.Save(ctx, "key", []byte("entry"), time.Hour)

	// The next Load fails, as a store across a network may.
	store.Fail(econnecttest.StoreLoad, 1, econnecttest.StoreFault{Err: errors.New("connection reset")})
	_, err := store.Load(ctx, "key")
	fmt.Println("first load:", err)
	v, err := store.Load(ctx, "key")
	fmt.Printf("second load: %s %v\n", v, err)

	// Garbage under the key, as another program might leave.
	store.Put("key", []byte("{not json"))
	v, _ = store.Load(ctx, "key")
	fmt.Printf("planted: %s\n", v)

	// A miss is fs.ErrNotExist, which is what econnect.ErrNotStored is.
	_, err = store.Load(ctx, "other")
	fmt.Println("missing:", errors.Is(err, econnect.ErrNotStored))

	// One holder of a key's lock at a time; the lease lapses after 30 s.
	unlock, err := store.Lock(ctx, "key", 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	unlock()
	fmt.Printf("%+v\n", store.Stats())
	// Output:
	// first load: connection reset
	// second load: entry <nil>
	// planted: {not json
	// missing: true
	// {Loads:4 Saves:1 Deletes:0 Locks:1 LockWaits:0 MaxHolders:1 Faults:1}
}
