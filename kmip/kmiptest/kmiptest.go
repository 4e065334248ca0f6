// Package kmiptest runs a KMIP server on loopback for tests outside the
// kmip package (the package's own tests cannot import it: a cycle).
package kmiptest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kmip"
)

// Serve starts a server with cfg on 127.0.0.1:0 and shuts it down when
// the test ends.
func Serve(t testing.TB, cfg kmip.Config) (srv *kmip.Server, addr string) {
	t.Helper()
	srv, err := kmip.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, l.Addr().String()
}
