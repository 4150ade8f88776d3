package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestBucket(t *testing.T) {
	b := NewBucket(Limit{Rate: 2, Burst: 3})
	for i := range 3 {
		if ok, _ := b.Take(t0); !ok {
			t.Fatalf("take %d of the burst refused", i)
		}
	}
	ok, wait := b.Take(t0)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("take past the burst: %v, wait %v; want refused, 500ms", ok, wait)
	}
	if ok, _ := b.Take(t0.Add(499 * time.Millisecond)); ok {
		t.Fatal("a token before it was earned")
	}
	if ok, _ := b.Take(t0.Add(500 * time.Millisecond)); !ok {
		t.Fatal("no token after it was earned")
	}
	// Idle for long: back to the burst, not more.
	later := t0.Add(time.Hour)
	n := 0
	for {
		if ok, _ := b.Take(later); !ok {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d tokens after an hour, want the burst of 3", n)
	}
	// A clock going backwards earns nothing.
	if ok, _ := b.Take(later.Add(-time.Minute)); ok {
		t.Fatal("a token from a clock that went back")
	}
}

// TestBucketBound: over any window, at most Burst + Rate×t requests pass.
func TestBucketBound(t *testing.T) {
	l := Limit{Rate: 5, Burst: 10}
	b := NewBucket(l)
	passed := 0
	for i := range 10000 { // 10 s, one request every millisecond
		if ok, _ := b.Take(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			passed++
		}
	}
	if max := 10 + 5*10; passed > max || passed < max-1 {
		t.Fatalf("%d passed in 10 s, want about %d", passed, max)
	}
}

func TestUnlimited(t *testing.T) {
	for _, l := range []Limit{{}, {Rate: 1}, {Burst: 1}} {
		b, k := NewBucket(l), NewKeyed(l, 1)
		for i := range 100 {
			if ok, _ := b.Take(t0); !ok {
				t.Fatalf("%+v: bucket refused", l)
			}
			if ok, _ := k.Take(fmt.Sprint(i), t0); !ok {
				t.Fatalf("%+v: keyed refused", l)
			}
		}
	}
}

func TestKeyed(t *testing.T) {
	k := NewKeyed(Limit{Rate: 1, Burst: 2}, 3)
	for range 2 {
		if ok, _ := k.Take("a", t0); !ok {
			t.Fatal("a's burst refused")
		}
	}
	if ok, _ := k.Take("a", t0); ok {
		t.Fatal("a past its burst")
	}
	if ok, _ := k.Take("b", t0); !ok {
		t.Fatal("b limited by a")
	}
	// Refund: a's failed attempt given back.
	k.Refund("a", t0)
	if ok, _ := k.Take("a", t0); !ok {
		t.Fatal("a refunded token not there")
	}
	k.Refund("a", t0)
	k.Refund("a", t0)
	k.Refund("a", t0)
	n := 0
	for {
		if ok, _ := k.Take("a", t0); !ok {
			break
		}
		n++
	}
	if n != 2 {
		t.Fatalf("refunds went past the burst: %d tokens", n)
	}
}

// TestKeyedFull: a full table refuses new keys while its keys are in use,
// never forgetting an active key (which would reset its limit), and makes
// room once keys are idle.
func TestKeyedFull(t *testing.T) {
	k := NewKeyed(Limit{Rate: 1, Burst: 2}, 2)
	k.Take("a", t0)
	k.Take("a", t0)
	k.Take("b", t0)
	if ok, _ := k.Take("c", t0); ok {
		t.Fatal("a new key in a full table")
	}
	if ok, _ := k.Take("a", t0); ok {
		t.Fatal("a's bucket was reset")
	}
	if k.Len() != 2 {
		t.Fatalf("%d keys", k.Len())
	}
	// Two seconds later every bucket is full again: c gets room.
	if ok, _ := k.Take("c", t0.Add(2*time.Second)); !ok {
		t.Fatal("no room after the keys went idle")
	}
	if k.Len() > 2 {
		t.Fatalf("%d keys, the maximum is 2", k.Len())
	}
}

// TestKeyedManyKeys: a flood of distinct keys never grows the table past
// its maximum.
func TestKeyedManyKeys(t *testing.T) {
	k := NewKeyed(Limit{Rate: 0.1, Burst: 5}, 1000)
	for i := range 100000 {
		k.Take(fmt.Sprint(i), t0.Add(time.Duration(i)*time.Millisecond))
		if k.Len() > 1000 {
			t.Fatalf("%d keys after %d", k.Len(), i)
		}
	}
}
