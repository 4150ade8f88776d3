// Command storefill copies one repository's current metadata to many new
// repositories through signet's own store (internal/store/sqlstore), the
// write path signet-server uses (one UpdateMany per repository: tuf_files,
// tuf_heads, the changefeed and a NOTIFY), so the growth benchmark can reach
// 100,000 repositories in seconds instead of hours of publishes.
//
//	storefill -db postgres://postgres@127.0.0.1:5432/signet_bench -template example.com/bench/app \
//	          -fmt example.com/fill/r%d -from 0 -to 100000 -c 8
//
// The copies are byte-for-byte the template's files (root, targets, snapshot,
// timestamp), valid until the template's timestamp expires; nothing reads
// their online keys unless they are published to or re-signed, which the
// benchmark does not do. It is a separate module (bench/storefill/go.mod,
// with a replace to the work tree) so neither the bench module, which pins
// the notary v0.7.0 client's dependencies, nor the main module changes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "storefill:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("storefill", flag.ContinueOnError)
	db := fs.String("db", "", "signet database URL (postgres://… or sqlite:…)")
	template := fs.String("template", "", "repository whose current metadata is copied")
	gunFmt := fs.String("fmt", "example.com/fill/r%d", "GUN pattern of the copies")
	from := fs.Int("from", 0, "first index (inclusive)")
	to := fs.Int("to", 1000, "last index (exclusive)")
	conc := fs.Int("c", 8, "concurrent writers")
	limit := fs.Duration("max", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *db == "" || *template == "" || *from < 0 || *to < *from || *conc < 1 {
		return errors.New("need -db, -template, 0 ≤ -from ≤ -to, -c ≥ 1")
	}
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	s, err := sqlstore.Open(ctx, *db, sqlstore.WithMaxConns(*conc+1))
	if err != nil {
		return err
	}
	defer s.Close()
	var files []store.File
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		f, err := s.GetCurrent(ctx, *template, role)
		if err != nil {
			return fmt.Errorf("template %s: %w", *template, err)
		}
		f.GUN, f.CreatedAt = "", time.Time{}
		files = append(files, f)
	}
	start := time.Now()
	var next atomic.Int64
	next.Store(int64(*from))
	var wg sync.WaitGroup
	errs := make([]error, *conc)
	for w := range *conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(*to) || ctx.Err() != nil {
					return
				}
				gun := fmt.Sprintf(*gunFmt, i)
				if err := s.UpdateMany(ctx, gun, files); err != nil {
					errs[w] = err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n := *to - *from
	el := time.Since(start)
	fmt.Printf("{\"storefill\":%d,\"from\":%d,\"to\":%d,\"seconds\":%.2f,\"per_second\":%.0f}\n", n, *from, *to, el.Seconds(), float64(n)/el.Seconds())
	return nil
}
