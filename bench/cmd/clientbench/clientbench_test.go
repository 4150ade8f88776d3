package main

import (
	"strings"
	"testing"
)

func TestCountTags(t *testing.T) {
	list := "\nNAME      DIGEST    SIZE (BYTES)    ROLE\n----      ------    ------------    ----\nv1.0.0    ab        12              targets\nv1.1.0    cd        12              targets\n\n"
	inspect := `[{"Name":"example.com/a","SignedTags":[{"SignedTag":"v1","Digest":"ab","Signers":["Repo Admin"]},{"SignedTag":"v2","Digest":"cd","Signers":["Repo Admin"]}],"Signers":[],"AdministrativeKeys":[]}]`
	for _, tc := range []struct {
		client, out string
		want        int
		err         string
	}{
		{NotaryList, list, 2, ""},
		{SignetList, list, 2, ""},
		{NotaryList, "No targets present in this repository.\n", 0, "no table"},
		{DockerInspect, inspect, 2, ""},
		{SignetInspect, inspect, 2, ""},
		{DockerInspect, "[]", 0, "0 repositories"},
		{DockerInspect, `[{"SignedTags":[{"SignedTag":"v1"}]}]`, 0, "without name or digest"},
		{SignetInspect, "not json", 0, "not trust inspect JSON"},
	} {
		n, err := countTags(tc.client, []byte(tc.out))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %.20q: err %v, want %q", tc.client, tc.out, err, tc.err)
			}
			continue
		}
		if err != nil || n != tc.want {
			t.Errorf("%s %.20q: %d, %v; want %d", tc.client, tc.out, n, err, tc.want)
		}
	}
}
