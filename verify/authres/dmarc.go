package authres

import (
	"strings"

	"github.com/authmilter/authmilter/verify/dmarc"
)

// FromDMARC converts a DMARC result to a resinfo:
//
//	dmarc=<result> (p=reject dis=quarantine, lowered by t=y) reason="<why>"
//	    header.from=<author domain> policy.dmarc=<policy published>
//
// header.from is the property RFC 7489 §11.1 registers for the method;
// policy.dmarc (a property of the policy ptype, RFC 8601 §2.3) carries the
// policy published for the message: after sp/np selection, before t=y and
// pct. The comment gives the
// tag that applied with its policy, the disposition, and why the
// disposition is less strict than the policy; the reason is
// dmarc.Result.Reason with any RecordNote.
func FromDMARC(r dmarc.Result) Result {
	out := Result{
		Method: "dmarc",
		Value:  orNone(r.Result),
		Reason: r.Reason,
	}
	if r.RecordNote != "" {
		if out.Reason != "" {
			out.Reason += "; "
		}
		out.Reason += r.RecordNote
	}
	var c []string
	if r.Policy != "" {
		tag := r.Applied
		if tag == "" {
			tag = dmarc.TagP
		}
		c = append(c, string(tag)+"="+string(r.Policy))
	}
	if r.Disposition != "" {
		c = append(c, "dis="+string(r.Disposition))
	}
	comment := strings.Join(c, " ")
	switch r.Reduced {
	case dmarc.NotReduced:
	case dmarc.ReducedTesting:
		comment += ", lowered by t=y"
	case dmarc.ReducedSampling:
		comment += ", lowered by pct"
	default:
		comment += ", lowered by " + string(r.Reduced)
	}
	out.Comment = strings.TrimPrefix(comment, ", ")
	if r.AuthorDomain != "" {
		out.Props = append(out.Props, Property{"header", "from", r.AuthorDomain})
	}
	if r.Policy != "" {
		out.Props = append(out.Props, Property{"policy", "dmarc", string(r.Policy)})
	}
	return out
}
