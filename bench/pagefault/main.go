// Command pagefault measures what the first touch of a page of memory costs
// on this machine: the page fault that a new process pays for every page of
// heap, stack and data it uses. It maps anonymous memory and writes one byte
// per page, and does the same to memory populated beforehand in one call
// (madvise MADV_POPULATE_WRITE, Linux 5.14 or later), which shows what the
// trap itself costs beside the page's allocation. No root needed.
//
// Usage: go run ./bench/pagefault [-pages N] [-rounds N]
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	pages := flag.Int("pages", 4096, "pages touched per round")
	rounds := flag.Int("rounds", 5, "rounds")
	flag.Parse()
	var fault, populate, touch []float64
	for range *rounds {
		f, p, t, err := round(*pages)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pagefault:", err)
			os.Exit(1)
		}
		fault, populate, touch = append(fault, f), append(populate, p), append(touch, t)
	}
	fmt.Printf("first touch, faulting:          %6.2f µs per page (median of %d rounds of %d pages)\n", median(fault), *rounds, *pages)
	fmt.Printf("populating in one call:         %6.2f µs per page\n", median(populate))
	fmt.Printf("first touch, after populating:  %6.2f µs per page\n", median(touch))
}

// round returns the µs per page of touching fresh pages, of populating
// others, and of touching those.
func round(pages int) (fault, populate, touch float64, err error) {
	size := pages * os.Getpagesize()
	a, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return 0, 0, 0, err
	}
	defer unix.Munmap(a)
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return 0, 0, 0, err
	}
	defer unix.Munmap(b)
	fault = perPage(pages, func() { write(a) })
	var madvErr error
	populate = perPage(pages, func() { madvErr = unix.Madvise(b, unix.MADV_POPULATE_WRITE) })
	if madvErr != nil {
		return 0, 0, 0, fmt.Errorf("madvise MADV_POPULATE_WRITE: %w", madvErr)
	}
	touch = perPage(pages, func() { write(b) })
	return fault, populate, touch, nil
}

func write(mem []byte) {
	for i := 0; i < len(mem); i += os.Getpagesize() {
		mem[i] = 1
	}
}

func perPage(pages int, fn func()) float64 {
	start := time.Now()
	fn()
	return float64(time.Since(start).Nanoseconds()) / 1e3 / float64(pages)
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}
