// Per-request cost of attaching a cached token in Go, for comparison with the Rust `bearer`
// bench (middleware/benches/bearer.rs): golang.org/x/oauth2's Transport over a no-op
// RoundTripper, with the token cached by ReuseTokenSource, against the no-op RoundTripper
// alone and a hand-written static-header RoundTripper (Go's counterpart of tower-http's
// AddAuthorization). Each case builds its request, as the Rust bench does.
//
// Run (from this directory): go test -bench . -benchmem -count 5
package gooauth2bench

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const accessToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"

var (
	target = &url.URL{Scheme: "http", Host: "api.example", Path: "/"}
	answer = &http.Response{StatusCode: http.StatusOK, Header: http.Header{}}
	sink   *http.Request
)

// noop answers at once; it keeps the request so the compiler cannot drop it.
type noop struct{}

func (noop) RoundTrip(req *http.Request) (*http.Response, error) {
	sink = req
	return answer, nil
}

// staticHeader puts a fixed Authorization header on a copy of the request (a RoundTripper
// must not modify the request it is given).
type staticHeader struct {
	value string
	base  http.RoundTripper
}

func (s staticHeader) RoundTrip(req *http.Request) (*http.Response, error) {
	req2 := req.Clone(req.Context())
	req2.Header.Set("Authorization", s.value)
	return s.base.RoundTrip(req2)
}

// oneToken hands out one token that lives an hour, and fails if asked twice: the benchmark
// must be served from ReuseTokenSource's cache.
type oneToken struct{ given bool }

func (o *oneToken) Token() (*oauth2.Token, error) {
	if o.given {
		return nil, errors.New("token requested twice")
	}
	o.given = true
	return &oauth2.Token{
		AccessToken: accessToken,
		TokenType:   "Bearer",
		Expiry:      time.Now().Add(time.Hour),
	}, nil
}

func newRequest(ctx context.Context) *http.Request {
	return (&http.Request{
		Method:     http.MethodGet,
		URL:        target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header),
		Host:       target.Host,
	}).WithContext(ctx)
}

func run(b *testing.B, rt http.RoundTripper) {
	ctx := context.Background()
	if _, err := rt.RoundTrip(newRequest(ctx)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := rt.RoundTrip(newRequest(ctx)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNoTransport(b *testing.B) {
	run(b, noop{})
}

func BenchmarkStaticHeader(b *testing.B) {
	run(b, staticHeader{value: "Bearer " + accessToken, base: noop{}})
}

func BenchmarkOAuth2Transport(b *testing.B) {
	rt := &oauth2.Transport{
		Source: oauth2.ReuseTokenSource(nil, &oneToken{}),
		Base:   noop{},
	}
	run(b, rt)
	if got := sink.Header.Get("Authorization"); got != "Bearer "+accessToken {
		b.Fatalf("Authorization = %q", got)
	}
}
