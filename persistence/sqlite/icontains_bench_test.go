package sqlite

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// icontainsTexts are texts of the languages a search scans, about 1 KB
// each, none holding the needle (the common case: every byte is read).
var icontainsTexts = map[string]string{
	"french":  strings.Repeat("Émile a commandé une crème brûlée à la Brasserie; ", 20),
	"chinese": strings.Repeat("我们明天在北京的咖啡馆见面，然后一起去看电影。", 15),
	"russian": strings.Repeat("Привет, как дела? Мы встретимся завтра в Москве. ", 20),
}

// BenchmarkIcontains measures chatd_icontains on a text without the
// needle, per language.
func BenchmarkIcontains(b *testing.B) {
	for name, text := range icontainsTexts {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if icontains(text, "quokka") {
					b.Fatal("found")
				}
			}
		})
		b.Run(name+"/lower-only", func(b *testing.B) {
			for b.Loop() {
				_ = strings.Contains(strings.ToLower(text), "quokka")
			}
		})
		b.Run(name+"/quickspan", func(b *testing.B) {
			for b.Loop() {
				_ = norm.NFC.QuickSpanString(text)
			}
		})
	}
}

// TestIcontainsNormalForms: icontains finds exactly what fold's
// comparison finds, on texts in NFC (checked by inertBMP, not
// normalised) and texts that NFC changes after their first non-ASCII
// character (normalised): decomposed and mixed accents, Hangul jamo, a
// CJK compatibility ideograph, the Greek question mark, characters past
// the BMP.
func TestIcontainsNormalForms(t *testing.T) {
	t.Parallel()
	texts := []string{"Émile a commandé une crème", "E\u0301mile a commande\u0301", "Vi\u00ea\u0323t nam",
		"Vie\u0302\u0323t nam", "é then e\u0301", "\u1112\u1161\u11ab국어", "한국어", "\uF900 and 豈",
		"a\u037Eb", "😀 café", "😀 cafe\u0301", "ǅemal Straße", "ΣΟΦΊΑ σοφία"}
	needles := []string{"é", "e", "émile", "việt", "viêt", "한국", "豈", "a;b", "café", "cafe", "ǆ", "σοφία", "ί"}
	for _, text := range texts {
		for _, needle := range needles {
			needle = fold(needle)
			want := strings.Contains(fold(text), needle)
			if got := icontains(text, needle); got != want {
				t.Errorf("icontains(%q, %q) = %v, want %v", text, needle, got, want)
			}
			if got := icontains([]byte(text), needle); got != want {
				t.Errorf("icontains(bytes %q, %q) = %v, want %v", text, needle, got, want)
			}
		}
	}
}

// TestInertRunesAreNFC: a text of characters inertBMP takes as inert is
// in NFC (norm's quick check), whichever inert character comes before
// or after one; inertBMP refuses what NFC changes.
func TestInertRunesAreNFC(t *testing.T) {
	t.Parallel()
	for r := rune(0); r <= 0xFFFF; r++ {
		s := string(r)
		if !utf8.ValidRune(r) || !inertBMP(s) {
			continue
		}
		for _, ctx := range []string{"a", "e", "\u1100", "ᄀ", "가", "ω", "\u0fb2", "\u0915"} {
			if inertBMP(ctx) && !norm.NFC.IsNormalString(ctx+s+ctx) {
				t.Fatalf("%U is taken as inert, but %q is not in NFC", r, ctx+s+ctx)
			}
		}
	}
	for _, s := range []string{"e\u0301", "\u1112\u1161", "\uF900", "\u037E", "😀", "\u212B"} {
		if inertBMP(s) {
			t.Errorf("inertBMP(%q) = true, want false: NFC changes it or it is past the BMP", s)
		}
	}
}
