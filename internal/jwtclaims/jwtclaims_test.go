package jwtclaims

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func token(header, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + ".c2ln"
}

const hs256 = `{"alg":"HS256","typ":"JWT"}`

func TestParse(t *testing.T) {
	tests := []struct {
		name, token string
		want        Claims
		wantErr     string
	}{
		{"all", token(hs256, `{"unique_name":"cam","iat":1000,"exp":4600.5}`),
			Claims{Exp: time.Unix(4600, 5e8).UTC(), Iat: time.Unix(1000, 0).UTC(), Name: "cam"}, ""},
		{"none", token(hs256, `{}`), Claims{}, ""},
		{"nulls", token(hs256, `{"exp":null,"iat":null,"unique_name":null}`), Claims{}, ""},
		{"name not a string", token(hs256, `{"unique_name":["a"]}`), Claims{}, ""},
		{"exp a string", token(hs256, `{"exp":"4600"}`), Claims{}, "exp is not a time"},
		{"iat a bool", token(hs256, `{"iat":true}`), Claims{}, "iat is not a time"},
		{"exp negative", token(hs256, `{"exp":-1}`), Claims{}, "exp is not a time"},
		{"exp past 9999", token(hs256, `{"exp":253402300800}`), Claims{}, "exp is not a time"},
		{"payload an array", token(hs256, `[1]`), Claims{}, "malformed JWT"},
		{"no alg", token(`{"typ":"JWT"}`, `{}`), Claims{}, "malformed JWT"},
		{"two parts", "eyJhbGciOiJIUzI1NiJ9.e30", Claims{}, "malformed JWT"},
		{"four parts", token(hs256, `{}`) + ".x", Claims{}, "malformed JWT"},
		{"not base64", "!!!.e30.c2ln", Claims{}, "malformed JWT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.token)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Parse() error = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if !got.Exp.Equal(tt.want.Exp) || !got.Iat.Equal(tt.want.Iat) || got.Name != tt.want.Name {
				t.Errorf("Parse() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
