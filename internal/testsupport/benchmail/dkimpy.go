package benchmail

import (
	"bufio"
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"
)

// ARCSealer names what seals the ARC Sets of the arc-1hop and arc-2hop
// classes.
type ARCSealer string

const (
	// SealDkimpy seals with dkimpy (Debian's python3-dkim, which needs
	// python3-authres for ARC): the chains a verifier meets come from an
	// implementation other than the one measured. The default.
	SealDkimpy ARCSealer = "dkimpy"
	// SealOwn seals with authmilter's own arc.Sealer: for a machine
	// without python3-dkim.
	SealOwn ARCSealer = "authmilter"
)

// defaultPython is Debian's interpreter, which sees python3-dkim; a python3
// earlier on PATH (pyenv, a virtualenv) usually does not.
const defaultPython = "/usr/bin/python3"

// dkimpySealScript reads one JSON request per line on stdin and answers
// each with one JSON line: {"set": the ARC Set's three fields} or
// {"error": why}. arc_sign takes cv= from the message's
// Authentication-Results of srv_id and needs no DNS.
const dkimpySealScript = `
import sys, json, base64
try:
    import dkim, authres
except ImportError as e:
    sys.stdout.write(json.dumps({"error": "cannot import %s" % e.name}) + "\n")
    sys.stdout.flush()
    sys.exit(0)
sys.stdout.write(json.dumps({"ready": getattr(dkim, "__version__", "?")}) + "\n")
sys.stdout.flush()
for line in sys.stdin:
    q = json.loads(line)
    try:
        s = dkim.arc_sign(base64.b64decode(q["msg"]), q["selector"].encode(), q["domain"].encode(),
                          q["key"].encode(), q["srv_id"].encode(),
                          include_headers=[h.lower().encode() for h in q["headers"]],
                          timestamp=q["t"])
        if not s:
            a = {"error": "arc_sign added no ARC Set (no Authentication-Results of %s?)" % q["srv_id"]}
        else:
            a = {"set": base64.b64encode(b"".join(s)).decode()}
    except Exception as e:
        a = {"error": "%s: %s" % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(a) + "\n")
    sys.stdout.flush()
`

// dkimpyTimeout bounds each exchange with the python3 process (start-up,
// one seal): past it the process is killed and Generate fails.
var dkimpyTimeout = 60 * time.Second

// dkimpy is one python3 process running dkimpySealScript for a corpus.
type dkimpy struct {
	cmd      *exec.Cmd
	in       io.WriteCloser
	out      *bufio.Reader
	stderr   bytes.Buffer               // read once the process has ended (wait)
	pems     map[*rsa.PrivateKey]string // PKCS #1 PEM of the keys sealed with
	timedOut atomic.Bool
	waited   bool
}

// errNoDkimpy explains what is missing and the way around it.
func errNoDkimpy(why string) error {
	return fmt.Errorf("benchmail: sealing ARC with dkimpy: %s (install the Debian packages python3-dkim and python3-authres, or seal with authmilter's own sealer: benchmail --arc-sealer %s)", why, SealOwn)
}

// startDkimpy starts python (defaultPython when empty, else python3 on
// PATH when that is missing) with the sealing script and waits for it to
// say it is ready.
func startDkimpy(python string) (*dkimpy, error) {
	if python == "" {
		python = defaultPython
		if _, err := os.Stat(python); err != nil {
			python = "python3"
		}
	}
	p := &dkimpy{cmd: exec.Command(python, "-c", dkimpySealScript), pems: map[*rsa.PrivateKey]string{}}
	p.cmd.Stderr = &p.stderr
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = bufio.NewReader(out)
	if err := p.cmd.Start(); err != nil {
		return nil, errNoDkimpy(err.Error())
	}
	var hello struct {
		Ready *string `json:"ready"`
		Error string  `json:"error"`
	}
	if err := p.answer(&hello); err != nil {
		p.close()
		return nil, errNoDkimpy(err.Error())
	}
	if hello.Ready == nil {
		p.close()
		return nil, errNoDkimpy(python + ": " + hello.Error)
	}
	return p, nil
}

// answer reads one JSON line into v within dkimpyTimeout.
func (p *dkimpy) answer(v any) error {
	t := time.AfterFunc(dkimpyTimeout, func() {
		p.timedOut.Store(true)
		p.cmd.Process.Kill()
	})
	line, err := p.out.ReadBytes('\n')
	t.Stop()
	if p.timedOut.Load() {
		return fmt.Errorf("python3 gave no answer in %v: killed", dkimpyTimeout)
	}
	if err != nil {
		// The output ended: the process did. Its stderr is complete
		// once Wait has returned.
		p.wait()
		msg := strings.TrimSpace(p.stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("python3 ended: %s", msg)
	}
	return json.Unmarshal(line, v)
}

// seal asks dkimpy for the ARC Set that domain adds to msg (which carries
// the Authentication-Results of srvID), signed with key at time t, the AMS
// covering headers; it returns the three fields, CRLF-terminated.
func (p *dkimpy) seal(msg []byte, key *rsa.PrivateKey, domain, selector, srvID string, headers []string, t time.Time) ([]byte, error) {
	pemText, ok := p.pems[key]
	if !ok {
		pemText = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
		p.pems[key] = pemText
	}
	q, err := json.Marshal(map[string]any{
		"msg": msg, "key": pemText, "domain": domain, "selector": selector,
		"srv_id": srvID, "headers": headers, "t": t.Unix(),
	})
	if err != nil {
		return nil, err
	}
	if _, err := p.in.Write(append(q, '\n')); err != nil {
		return nil, fmt.Errorf("benchmail: dkimpy: %w", err)
	}
	var a struct {
		Set   []byte `json:"set"`
		Error string `json:"error"`
	}
	if err := p.answer(&a); err != nil {
		return nil, fmt.Errorf("benchmail: dkimpy: %w", err)
	}
	if a.Error != "" {
		return nil, fmt.Errorf("benchmail: dkimpy arc_sign for %s: %s", domain, a.Error)
	}
	if len(a.Set) == 0 {
		return nil, errors.New("benchmail: dkimpy arc_sign returned nothing")
	}
	return a.Set, nil
}

// close ends the process: the script returns at the end of its input.
func (p *dkimpy) close() {
	p.in.Close()
	p.wait()
}

// wait waits for the process to end, once.
func (p *dkimpy) wait() {
	if !p.waited {
		p.waited = true
		_ = p.cmd.Wait()
	}
}
