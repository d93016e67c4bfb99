package wallet

import "testing"

func TestHostPatterns(t *testing.T) {
	t.Parallel()
	cases := []struct {
		host     string
		patterns []string
		want     bool
	}{
		{"api.example.com", []string{"api.example.com"}, true},
		{"API.Example.COM:443", []string{"api.example.com"}, true},
		{"api.example.com.", []string{"api.example.com"}, true},
		{"a.b.example.com", []string{"*.example.com"}, true},
		{"example.com", []string{"*.example.com"}, false},
		{"evilexample.com", []string{"*.example.com"}, false},
		{"example.com.evil.net", []string{"example.com"}, false},
		// Cyrillic "а" (U+0430) in place of the Latin "a": a look-alike is another host.
		{"ex\u0430mple.com", []string{"example.com"}, false},
		{"ex\u0430mple.com", []string{"*.example.com"}, false},
		// An internationalised name matches its own pattern in either form.
		{"bücher.example", []string{"xn--bcher-kva.example"}, true},
		{"xn--bcher-kva.example", []string{"bücher.example"}, true},
		{"BÜCHER.example", []string{"bücher.example"}, true},
		{"127.0.0.1:8080", []string{"127.0.0.1"}, true},
		{"[::1]:8080", []string{"::1"}, true},
	}
	for _, tc := range cases {
		h, err := normalizeHost(tc.host)
		if err != nil {
			if tc.want {
				t.Errorf("%q: %v", tc.host, err)
			}
			continue
		}
		if got := hostMatches(h, tc.patterns); got != tc.want {
			t.Errorf("%q (%q) against %v: %v, want %v", tc.host, h, tc.patterns, got, tc.want)
		}
	}
	for _, bad := range []string{"", "exa mple.com", "a..b"} {
		if h, err := normalizeHost(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, h)
		}
	}
}

func TestRouteMatches(t *testing.T) {
	t.Parallel()
	routes := []string{"GET /tools", "/public/"}
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/tools", true}, {"get", "/tools/x", true}, {"POST", "/tools", false}, {"GET", "/toolsx", false},
		{"POST", "/public/a", true}, {"GET", "/public", true}, {"GET", "/", false},
	} {
		if got := routeMatches(tc.method, tc.path, routes); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}
