package postfixtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// QueuedMessage is one message as "postqueue -j" describes it.
type QueuedMessage struct {
	QueueName   string `json:"queue_name"` // active, deferred, hold, incoming, maildrop
	QueueID     string `json:"queue_id"`
	ArrivalTime int64  `json:"arrival_time"`
	MessageSize int64  `json:"message_size"`
	Sender      string `json:"sender"`
	Recipients  []struct {
		Address     string `json:"address"`
		DelayReason string `json:"delay_reason,omitempty"`
	} `json:"recipients"`
}

// QueueState summarises the queue.
type QueueState struct {
	Incoming, Active, Deferred, Hold, Maildrop int
	Messages                                   []QueuedMessage
}

// Total is the number of queued messages, hold included.
func (q QueueState) Total() int { return len(q.Messages) }

// Queue lists the queue through "postqueue -j" (needs the showq service,
// which the running instance provides).
func (in *Instance) Queue(t testing.TB) QueueState {
	t.Helper()
	out, err := in.command("postqueue", "-j")
	if err != nil {
		in.fatalf(t, "%v", err)
	}
	var q QueueState
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var m QueuedMessage
		if err := json.Unmarshal(line, &m); err != nil {
			in.fatalf(t, "postqueue -j: %v in %q", err, line)
		}
		q.Messages = append(q.Messages, m)
		switch m.QueueName {
		case "incoming":
			q.Incoming++
		case "active":
			q.Active++
		case "deferred":
			q.Deferred++
		case "hold":
			q.Hold++
		case "maildrop":
			q.Maildrop++
		}
	}
	return q
}

// HoldQueue returns the queue ids of the messages in the hold queue (where
// Postfix puts messages a milter quarantined), read from the hold directory.
func (in *Instance) HoldQueue(t testing.TB) []string {
	t.Helper()
	var ids []string
	root := filepath.Join(in.spoolDir, "hold")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			ids = append(ids, d.Name())
		}
		return nil
	})
	if err != nil {
		in.fatalf(t, "listing the hold queue: %v", err)
	}
	sort.Strings(ids)
	return ids
}

// HeldMessage returns the header and body of a queued message (any queue)
// as "postcat -hb" prints them, with the milter's changes applied.
func (in *Instance) HeldMessage(t testing.TB, queueID string) []byte {
	t.Helper()
	out, err := in.command("postcat", "-hb", "-q", queueID)
	if err != nil {
		in.fatalf(t, "%v", err)
	}
	return stripPostcatMarkers(out)
}

// stripPostcatMarkers removes postcat's "*** HEADER EXTRACTED ... ***"
// style separator lines, leaving the message text.
func stripPostcatMarkers(out []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(string(out), "\n") {
		trimmed := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(trimmed, "*** ") && strings.HasSuffix(trimmed, " ***") {
			continue
		}
		b.WriteString(line)
	}
	return b.Bytes()
}

// ReleaseHold moves held messages back to the delivery queue ("postsuper
// -H"); with no ids it releases all of them. Follow with WaitDelivered.
func (in *Instance) ReleaseHold(t testing.TB, queueIDs ...string) {
	t.Helper()
	if len(queueIDs) == 0 {
		queueIDs = []string{"ALL"}
	}
	for _, id := range queueIDs {
		if _, err := in.command("postsuper", "-H", id); err != nil {
			in.fatalf(t, "%v", err)
		}
	}
	in.Flush(t)
}

// Flush asks the queue manager to retry all deferred mail now
// ("postqueue -f").
func (in *Instance) Flush(t testing.TB) {
	t.Helper()
	if _, err := in.command("postqueue", "-f"); err != nil {
		in.fatalf(t, "%v", err)
	}
}

// readDir lists regular files in dir, tolerating its absence.
func readDir(dir string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return ents, err
}
