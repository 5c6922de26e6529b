package postfixtest

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// ttyCapture gives a command a terminal as stderr: Postfix commands print
// their fatal errors to stderr only when it is a terminal (otherwise they
// go to the log, which does not exist before the instance runs).
type ttyCapture struct {
	master, slave *os.File
	mu            sync.Mutex
	buf           bytes.Buffer
	done          chan struct{}
}

// attachTTY sets cmd.Stderr (and Stdout when unset) to a pseudo-terminal,
// or to a plain buffer when no terminal can be had. Call finish after
// cmd.Start.
func attachTTY(cmd *exec.Cmd) *ttyCapture {
	c := &ttyCapture{done: make(chan struct{})}
	master, slave, err := openPTY()
	if err != nil {
		close(c.done)
		cmd.Stderr = c
		if cmd.Stdout == nil {
			cmd.Stdout = c
		}
		return c
	}
	c.master, c.slave = master, slave
	cmd.Stderr = slave
	if cmd.Stdout == nil {
		cmd.Stdout = slave
	}
	go func() {
		defer close(c.done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			c.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return c
}

// started closes our copy of the terminal's slave end, so that reads end
// once every process holding it has exited.
func (c *ttyCapture) started() {
	if c.slave != nil {
		c.slave.Close()
	}
}

func (c *ttyCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(bytes.ReplaceAll(p, []byte("\r\n"), []byte("\n")))
}

// String returns what was written so far.
func (c *ttyCapture) String() string {
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// wait waits up to d for the reader to drain (once the processes have
// exited) and releases the terminal.
func (c *ttyCapture) wait(d time.Duration) string {
	select {
	case <-c.done:
	case <-time.After(d):
	}
	if c.master != nil {
		c.master.Close()
	}
	<-c.done
	return c.String()
}

var _ io.Writer = (*ttyCapture)(nil)
