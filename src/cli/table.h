// Human output for the CLI: box-drawn tables (seed 004's look), an ASCII fallback, and optional
// ANSI colour per cell. Pure formatting, no I/O; the caller decides the style from the terminal
// (see TerminalStyle in output.h).
//
// Thread-safety: a Table is a value; use one per thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ferry::cli {

enum class Color { kNone, kGreen, kYellow, kRed, kBlue, kDim };

struct Cell {
  Cell() = default;
  Cell(std::string t) : text(std::move(t)) {}  // NOLINT: implicit on purpose, rows read better
  Cell(const char* t) : text(t) {}             // NOLINT
  Cell(std::string t, Color c) : text(std::move(t)), color(c) {}
  std::string text;
  Color color = Color::kNone;
};

struct TableStyle {
  // Box-drawing characters (UTF-8) when true; + - | otherwise.
  bool unicode = true;
  // Wrap cells with a Color in ANSI escapes. Never on when stdout is not a terminal.
  bool color = false;
};

// Headers and cells are data: each is one line, made terminal-safe (cli/terminal_text.h) before
// Render adds colours, so a cell's own escape sequences show as text and the table's colours work.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  // Missing cells are blank; extra cells are dropped.
  void AddRow(std::vector<Cell> row);
  size_t rows() const { return rows_.size(); }
  // The whole table, one line per row, ending with a newline.
  std::string Render(const TableStyle& style) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<Cell>> rows_;
};

// Key/value block for single records (`task status`, `queue stats`): keys padded to one column.
std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& rows);

// Display width in terminal columns: UTF-8 code points, control characters count zero.
// (East Asian wide characters are counted as one; Ferry's own output has none.)
size_t DisplayWidth(std::string_view s);
// Replaces newlines and tabs with spaces and cuts to `max_width` columns with a trailing "…"
// (or "..." when !unicode), so one cell stays on one line.
std::string Ellipsize(std::string_view s, size_t max_width, bool unicode = true);

}  // namespace ferry::cli
