package milter

import (
	"net"
	"sync"
	"time"
)

// closeDelay is how long the descriptor of an ended connection may wait
// to be closed with the others that end meanwhile.
const closeDelay = 5 * time.Millisecond

// maxPendingClose bounds the descriptors waiting: past it, a connection
// is closed at once.
const maxPendingClose = 256

// closer closes the descriptors of ended connections in batches: close(2)
// goes through the runtime's system-call path, which wakes its monitor
// thread when the process was idle (see rawListener and rawConn), and at
// one session that was once per message; now it is once per batch. A
// connection normally ends with the MTA's QUIT or its close, so nobody
// waits for ours; when the server ends one (a protocol error, a timeout)
// the MTA sees it up to closeDelay later. Once the server is shutting
// down, connections are closed at once.
type closer struct {
	mu      sync.Mutex
	pending []net.Conn
	running bool // run is there to close pending
	kick    chan struct{}
}

// start runs the closer until quit is closed; wg counts it.
func (cl *closer) start(quit <-chan struct{}, wg *sync.WaitGroup) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.kick != nil {
		return
	}
	cl.kick = make(chan struct{}, 1)
	cl.running = true
	wg.Add(1)
	go cl.run(quit, wg)
}

// close closes nc now or within closeDelay.
func (cl *closer) close(nc net.Conn) {
	cl.mu.Lock()
	if !cl.running || len(cl.pending) >= maxPendingClose {
		cl.mu.Unlock()
		nc.Close()
		return
	}
	cl.pending = append(cl.pending, nc)
	first := len(cl.pending) == 1
	cl.mu.Unlock()
	if first {
		select {
		case cl.kick <- struct{}{}:
		default:
		}
	}
}

func (cl *closer) run(quit <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	var batch []net.Conn
	t := time.NewTimer(closeDelay)
	t.Stop()
	for stop := false; !stop; {
		select {
		case <-cl.kick:
			t.Reset(closeDelay)
			select {
			case <-t.C:
			case <-quit:
				stop = true
			}
		case <-quit:
			stop = true
		}
		cl.mu.Lock()
		batch, cl.pending = cl.pending, batch[:0]
		cl.running = !stop
		cl.mu.Unlock()
		for i, nc := range batch {
			nc.Close()
			batch[i] = nil
		}
	}
}
