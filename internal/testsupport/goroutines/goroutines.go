// Package goroutines lets tests check that code runs without starting a
// goroutine, from the runtime's own count (runtime/metrics).
package goroutines

import "runtime/metrics"

const createdMetric = "/sched/goroutines-created:goroutines"

// Created returns the number of goroutines the program has created since
// it started. The difference of two readings around a piece of code, in a
// test that does not run in parallel with others, is the number of
// goroutines that code started.
func Created() uint64 {
	s := []metrics.Sample{{Name: createdMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		panic("goroutines: runtime has no metric " + createdMetric)
	}
	return s[0].Value.Uint64()
}
