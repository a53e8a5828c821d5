// Text a terminal shows as it is. Human output carries what others wrote (a program's stderr, an
// agent's note, a payload): an escape sequence there could set the window title, clear the
// screen or paint fake lines, a lone CR overwrite the line, a bidi override reorder it.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace ferry::cli {

// `text` with every control character but newline, tab and the CR of a CRLF made visible: C0
// controls and DEL as their Unicode control pictures (ESC as ␛), C1 controls and the bidi
// controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) as <U+XXXX>. Colour sequences
// too: from data, one can hide text (ESC [8m, black on black). Apply it to what comes from data
// before Ferry adds its own colours (Table does, for its cells), not to the coloured result.
std::string TerminalSafe(std::string_view text);

}  // namespace ferry::cli
