package matrix

import (
	"errors"
	"testing"
)

func TestVersionsAtLeast(t *testing.T) {
	v := &VersionsResponse{Versions: []string{"r0.5.0", "r0.6.1", "v1.1", "v1.3", "junk", "v1.x"}}
	yes := []string{"r0.0.1", "r0.6.1", "v1.0", "v1.1", "v1.3", "r0.6"}
	no := []string{"v1.4", "v1.10", "v2.0", "nonsense", "", "v1", "x1.1", "v1.2.3.4", "v1.+2", "v-1.0"}
	for _, s := range yes {
		if !v.AtLeast(s) {
			t.Errorf("AtLeast(%q) = false", s)
		}
	}
	for _, s := range no {
		if v.AtLeast(s) {
			t.Errorf("AtLeast(%q) = true", s)
		}
	}
	old := &VersionsResponse{Versions: []string{"r0.6.1"}}
	if old.AtLeast("v1.0") || old.SupportsRefresh() {
		t.Error("r0 must count below v1.0")
	}
	if !(&VersionsResponse{Versions: []string{"v1.12"}}).AtLeast("v1.7") {
		t.Error("v1.12 >= v1.7 (numeric, not lexical)")
	}
	if !(&VersionsResponse{Versions: []string{"v2.0"}}).AtLeast("v1.20") {
		t.Error("v2.0 >= v1.20")
	}
	var nilV *VersionsResponse
	if nilV.AtLeast("v1.0") || nilV.Unstable("x") {
		t.Error("nil versions")
	}
}

func TestVersionsEndpoint(t *testing.T) {
	w := newWire(t)
	w.reply("GET", "/_matrix/client/versions", 200, `{"versions":["r0.0.1","v1.1"],"unstable_features":{"org.example.my_feature":true,"off":false,"odd":"yes"}}`)
	c := w.client(t)
	v, err := c.Versions(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Unstable("org.example.my_feature") || v.Unstable("off") || v.Unstable("odd") || v.Unstable("missing") || len(v.UnstableFeatures) != 2 {
		t.Fatalf("unstable = %v", v.UnstableFeatures)
	}
	if w.last(t).Header.Get("Authorization") != "" {
		t.Fatal("versions sent a token")
	}
	for _, body := range []string{`{}`, `{"versions":null}`, `{"versions":"v1.1"}`, `{"versions":[1]}`} {
		w.reply("GET", "/_matrix/client/versions", 200, body)
		if _, err := c.Versions(testCtx(t)); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("%s: err = %v", body, err)
		}
	}
	w.reply("GET", "/_matrix/client/versions", 200, `{"versions":["v1.1"]}`)
	if v, err := c.Versions(testCtx(t)); err != nil || v.UnstableFeatures != nil {
		t.Fatalf("no unstable features: %+v %v", v, err)
	}
}
