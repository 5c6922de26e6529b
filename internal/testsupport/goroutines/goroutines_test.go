package goroutines

import (
	"sync"
	"testing"
)

func TestCreated(t *testing.T) {
	before := Created()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {})
	}
	wg.Wait()
	if n := Created() - before; n != 3 {
		t.Errorf("Created grew by %d for 3 goroutines", n)
	}
	before = Created()
	_ = make([]byte, 10)
	if n := Created() - before; n != 0 {
		t.Errorf("Created grew by %d without a go statement", n)
	}
}
