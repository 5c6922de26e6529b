package benchmail

// Class is a kind of message, named after what its authentication
// exercises.
type Class string

// The message classes. Each comes from its own sender domain, so DNS
// answers are not shared between classes.
const (
	// SPFOnly: no signature; SPF pass, DMARC pass through SPF alignment.
	SPFOnly Class = "spf-only"
	// DKIMRSA: RSA-2048 DKIM signature; SPF pass; DMARC pass.
	DKIMRSA Class = "dkim-rsa"
	// DKIMEd25519: Ed25519 DKIM signature (RFC 8463); SPF pass; DMARC pass.
	DKIMEd25519 Class = "dkim-ed25519"
	// SPFFail: sent from outside the SPF record; the aligned RSA DKIM
	// signature still gives DMARC pass.
	SPFFail Class = "spf-fail"
	// DMARCFail: a spoof of a p=reject domain: SPF fail, a valid but
	// unaligned Ed25519 signature of a bulk sender; DMARC fail → reject.
	DMARCFail Class = "dmarc-fail"
	// DMARCQuarantine: unsigned spoof of a p=quarantine domain.
	DMARCQuarantine Class = "dmarc-quarantine"
	// DMARCNone: a p=none domain whose RSA signature no longer verifies
	// (body altered) and SPF fails: DMARC fail, accepted.
	DMARCNone Class = "dmarc-none"
	// ARC1Hop: a message of a p=reject domain through a mailing list that
	// tags the subject and adds a footer (breaking DKIM) and seals (RSA):
	// DMARC fail, ARC pass from a sealer the receiver may trust.
	ARC1Hop Class = "arc-1hop"
	// ARC2Hop: ARC1Hop forwarded once more by a forwarder that seals
	// (RSA).
	ARC2Hop Class = "arc-2hop"
)

// Classes lists every class, in a stable order.
var Classes = []Class{SPFOnly, DKIMRSA, DKIMEd25519, SPFFail, DMARCFail, DMARCQuarantine, DMARCNone, ARC1Hop, ARC2Hop}

// Size is a nominal message size: about 1 KB of header written by the
// sender plus a body of Bytes-1024 bytes. Signatures and ARC Sets add to
// the header, so classes of one size carry bodies of the same length.
type Size struct {
	Name  string // "2KB", "20KB", "200KB"
	Bytes int
}

// Sizes are the nominal sizes of the corpus.
var Sizes = []Size{{"2KB", 2 << 10}, {"20KB", 20 << 10}, {"200KB", 200 << 10}}

// Expect is what a receiver following the RFCs concludes for a class, with
// the Policy of the generated configuration (DMARC enforced, the list
// trusted as ARC sealer).
type Expect struct {
	SPF    string `json:"spf"`
	DKIM   string `json:"dkim"`
	DMARC  string `json:"dmarc"`
	ARC    string `json:"arc"`
	Action string `json:"action"`
}

var expect = map[Class]Expect{
	SPFOnly:         {"pass", "none", "pass", "none", "accept"},
	DKIMRSA:         {"pass", "pass", "pass", "none", "accept"},
	DKIMEd25519:     {"pass", "pass", "pass", "none", "accept"},
	SPFFail:         {"fail", "pass", "pass", "none", "accept"},
	DMARCFail:       {"fail", "pass", "fail", "none", "reject"},
	DMARCQuarantine: {"fail", "none", "fail", "none", "quarantine"},
	DMARCNone:       {"fail", "fail", "fail", "none", "accept"},
	ARC1Hop:         {"pass", "fail", "fail", "pass", "accept"},
	ARC2Hop:         {"pass", "fail", "fail", "pass", "accept"},
}

// ExpectFor returns the expected verdicts of a class.
func ExpectFor(c Class) Expect { return expect[c] }
