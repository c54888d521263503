package ui

import "strings"

// bigRows is how many terminal rows a big letter takes.
const bigRows = 5

// bigFont draws the characters user codes are made of (RFC 8628 codes are
// letters, digits and dashes; MAS uses six upper-case letters and digits) in
// full blocks, five cells wide and five rows high, so the code reads from
// across the room in any terminal font. Zero is slashed so it is not an O.
var bigFont = map[rune][bigRows]string{
	'A': {" ### ", "#   #", "#####", "#   #", "#   #"},
	'B': {"#### ", "#   #", "#### ", "#   #", "#### "},
	'C': {" ####", "#    ", "#    ", "#    ", " ####"},
	'D': {"#### ", "#   #", "#   #", "#   #", "#### "},
	'E': {"#####", "#    ", "#### ", "#    ", "#####"},
	'F': {"#####", "#    ", "#### ", "#    ", "#    "},
	'G': {" ####", "#    ", "#  ##", "#   #", " ####"},
	'H': {"#   #", "#   #", "#####", "#   #", "#   #"},
	'I': {"#####", "  #  ", "  #  ", "  #  ", "#####"},
	'J': {"#####", "   # ", "   # ", "#  # ", " ##  "},
	'K': {"#   #", "#  # ", "###  ", "#  # ", "#   #"},
	'L': {"#    ", "#    ", "#    ", "#    ", "#####"},
	'M': {"#   #", "## ##", "# # #", "#   #", "#   #"},
	'N': {"#   #", "##  #", "# # #", "#  ##", "#   #"},
	'O': {" ### ", "#   #", "#   #", "#   #", " ### "},
	'P': {"#### ", "#   #", "#### ", "#    ", "#    "},
	'Q': {" ### ", "#   #", "# # #", "#  # ", " ## #"},
	'R': {"#### ", "#   #", "#### ", "#  # ", "#   #"},
	'S': {" ####", "#    ", " ### ", "    #", "#### "},
	'T': {"#####", "  #  ", "  #  ", "  #  ", "  #  "},
	'U': {"#   #", "#   #", "#   #", "#   #", " ### "},
	'V': {"#   #", "#   #", "#   #", " # # ", "  #  "},
	'W': {"#   #", "#   #", "# # #", "## ##", "#   #"},
	'X': {"#   #", " # # ", "  #  ", " # # ", "#   #"},
	'Y': {"#   #", " # # ", "  #  ", "  #  ", "  #  "},
	'Z': {"#####", "   # ", "  #  ", " #   ", "#####"},
	'0': {" ### ", "#  ##", "# # #", "##  #", " ### "},
	'1': {"  #  ", " ##  ", "  #  ", "  #  ", " ### "},
	'2': {" ### ", "#   #", "  ## ", " #   ", "#####"},
	'3': {"#### ", "    #", " ### ", "    #", "#### "},
	'4': {"#   #", "#   #", "#####", "    #", "    #"},
	'5': {"#####", "#    ", "#### ", "    #", "#### "},
	'6': {" ### ", "#    ", "#### ", "#   #", " ### "},
	'7': {"#####", "    #", "   # ", "  #  ", "  #  "},
	'8': {" ### ", "#   #", " ### ", "#   #", " ### "},
	'9': {" ### ", "#   #", " ####", "    #", " ### "},
	'-': {"     ", "     ", " ### ", "     ", "     "},
}

// bigGlyphWidth is the width of every letter of bigFont, in cells.
const bigGlyphWidth = 5

// bigText draws s in big letters no wider than w cells: two blanks between
// letters, or one when two do not fit. It says false (and draws nothing)
// when s has a character the font lacks or cannot fit at all, so the caller
// shows the plain code alone rather than a code that reads differently.
func bigText(s string, w int) (string, bool) {
	runes := []rune(s)
	if len(runes) == 0 {
		return "", false
	}
	for _, r := range runes {
		if _, ok := bigFont[r]; !ok {
			return "", false
		}
	}
	gap := 2
	if bigWidth(len(runes), gap) > w {
		gap = 1
	}
	if bigWidth(len(runes), gap) > w {
		return "", false
	}
	rows := make([]string, bigRows)
	for y := range rows {
		var b strings.Builder
		for i, r := range runes {
			if i > 0 {
				b.WriteString(strings.Repeat(" ", gap))
			}
			b.WriteString(strings.ReplaceAll(bigFont[r][y], "#", "█"))
		}
		rows[y] = b.String()
	}
	return strings.Join(rows, "\n"), true
}

// bigWidth is the width of n big letters with gap blanks between them.
func bigWidth(n, gap int) int { return n*bigGlyphWidth + (n-1)*gap }
