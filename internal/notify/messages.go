package notify

import (
	"fmt"
	"strings"
	"time"
)

// MessageFor is the mail about n for one recipient: "awaiting your
// approval" for EventAwaitingApproval (to an approver), "request <status>"
// for a final status (to the submitter). id is the delivery ID (the
// Message-ID), date the sending time.
//
// Every value taken from the request is put on a line of its own through
// OneLine, and the comment is quoted line by line ("> "), so a name or
// comment cannot pass for a line of the message or a link of ours.
func MessageFor(n Notification, to, id string, date time.Time) Message {
	image := OneLine(n.Image, 300)
	var subject string
	var b strings.Builder
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "  %-10s %s\n", name+":", OneLine(value, 500))
		}
	}
	if n.Event == EventAwaitingApproval {
		subject = fmt.Sprintf("[Signet] Approval needed: %s (%s/%s)", image, n.Project, n.Policy)
		b.WriteString("A signing request is waiting for your approval.\n\n")
	} else {
		subject = fmt.Sprintf("[Signet] Signing request %s: %s", n.Event, image)
		fmt.Fprintf(&b, "Your signing request has finished: %s.\n\n", n.Event)
	}
	field("Request", n.RequestID)
	field("Project", n.Project)
	field("Policy", n.Policy)
	field("Image", n.Image)
	field("Digest", n.Digest)
	field("Submitter", n.Submitter)
	if n.Required > 0 {
		field("Approvals", fmt.Sprintf("%d of %d", n.Approvals, n.Required))
	}
	field("Status", string(n.Event))
	if n.Comment != "" {
		b.WriteString("\nComment:\n")
		for _, line := range strings.Split(strings.ReplaceAll(n.Comment, "\r\n", "\n"), "\n") {
			b.WriteString("> " + OneLine(line, 1000) + "\n")
		}
	}
	if n.URL != "" {
		if n.Event == EventAwaitingApproval {
			b.WriteString("\nReview it, then approve or deny it here:\n")
		} else {
			b.WriteString("\nDetails:\n")
		}
		b.WriteString("  " + OneLine(n.URL, 2000) + "\n")
	}
	if n.Event == EventAwaitingApproval {
		fmt.Fprintf(&b, "\nYou receive this mail as an approver of the %s policy of the %s project.\n", OneLine(n.Policy, 200), OneLine(n.Project, 200))
	} else {
		b.WriteString("\nYou receive this mail because you submitted the request.\n")
	}
	return Message{To: to, Subject: subject, Body: b.String(), ID: id, Date: date}
}
