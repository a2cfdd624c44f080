package kernelfs

import "testing"

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/var/lib/cgprocfs`:    `/var/lib/cgprocfs`,
		`/tmp/a\040b`:          `/tmp/a b`,
		`/tmp/tab\011nl\012`:   "/tmp/tab\tnl\n",
		`/tmp/back\134slash`:   `/tmp/back\slash`,
		`/tmp/\040\040`:        `/tmp/  `,
		`/tmp/short\04`:        `/tmp/short\04`,
		`/tmp/notoctal\08x`:    `/tmp/notoctal\08x`,
		`/tmp/toobig\400`:      `/tmp/toobig\400`,
		`/tmp/trailing\`:       `/tmp/trailing\`,
		`/tmp/utf8-\303\251`:   "/tmp/utf8-\u00e9",
		`/tmp/lone\\040double`: `/tmp/lone\ double`,
	} {
		if got := UnescapeMountinfo(in); got != want {
			t.Errorf("UnescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
