package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

// ExampleSnapshot_Save streams a snapshot to a writer (a file in real
// use) and restores it. Neither direction holds the archive in memory.
func ExampleSnapshot_Save() {
	// A stand-in for Consul that serves a 3 MiB archive and counts what a
	// restore sends.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			w.Header().Set("X-Consul-Index", "1234")
			_, _ = io.Copy(w, io.LimitReader(snapshotZeros{}, 3<<20))
		case http.MethodPut:
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Println("server restored", n, "bytes")
		}
	}))
	defer srv.Close()

	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	client, err := api.NewClient(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	snap, meta, err := client.Snapshot().Save(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var file bytes.Buffer // an *os.File in real use
	n, err := io.Copy(&file, snap)
	_ = snap.Close()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("saved", n, "bytes at index", meta.LastIndex)

	if _, err := client.Snapshot().Restore(ctx, &file, nil); err != nil {
		fmt.Println(err)
		return
	}
	// Output:
	// saved 3145728 bytes at index 1234
	// server restored 3145728 bytes
}

type snapshotZeros struct{}

func (snapshotZeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
