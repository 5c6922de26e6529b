package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"time"
)

// calibrateMain implements `milterload calibrate`: a fixed piece of the
// CPU work a milter does (Ed25519 verifications and SHA-256 over body-sized
// buffers), timed on one goroutine, so that runs made minutes apart on a
// shared machine can be compared: if the same work took 1.3× longer during
// one milter's run, its CPU figures are inflated by about as much.
func calibrateMain(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return errors.New("calibrate takes no arguments")
	}
	us := calibrate(5)
	return json.NewEncoder(stdout).Encode(map[string]float64{"unit_us": us})
}

// calibrate returns the median, over rounds, of the wall time of one unit
// of work: one Ed25519 verification and SHA-256 over 32 KiB, averaged over
// 200 units.
func calibrate(rounds int) float64 {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	body := make([]byte, 32<<10)
	for i := range body {
		body[i] = byte(i)
	}
	sig := ed25519.Sign(key, body[:1024])
	const units = 200
	times := make([]float64, 0, rounds)
	for r := 0; r < rounds; r++ {
		start := time.Now()
		for i := 0; i < units; i++ {
			if !ed25519.Verify(pub, body[:1024], sig) {
				panic("calibrate: Ed25519 self-check failed")
			}
			sum := sha256.Sum256(body)
			body[1024+i] ^= sum[0] & 1 // the hash is used; the signed bytes stay
		}
		times = append(times, float64(time.Since(start).Microseconds())/units)
	}
	return median(times)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
