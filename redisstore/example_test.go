package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/redisstore"
	"github.com/redis/go-redis/v9"
)

// A Store goes in Config.Store, and every process whose Config names the
// same server, user and Redis shares its tokens and its logins. Here the
// Store is also called by hand, as the token sources call it, to show what
// it keeps in Redis.
func Example() {
	mr, err := miniredis.Run() // a program dials its own Redis instead
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer client.Close()

	store := redisstore.New(client, "myapp:")
	cfg := &econnect.Config{
		BaseURL:  "https://example.econnectcloud.com/identities",
		Username: "camera-1",
		Password: "s3cret",
		Store:    store,
	}
	fmt.Printf("%T\n", cfg.Store)

	ctx := context.Background()
	unlock, err := store.Lock(ctx, "econnect-v1-ab12", 31*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Save(ctx, "econnect-v1-ab12", []byte(`{"version":1}`), time.Hour); err != nil {
		log.Fatal(err)
	}
	fmt.Println(mr.Keys())
	unlock()
	fmt.Println(mr.Keys())
	// Output:
	// *redisstore.Store
	// [myapp:{econnect-v1-ab12}:lock myapp:{econnect-v1-ab12}:token]
	// [myapp:{econnect-v1-ab12}:token]
}
