#include "cli/table.h"

#include <algorithm>

#include "cli/terminal_text.h"

namespace ferry::cli {
namespace {

struct Glyphs {
  std::string_view h, v, tl, tm, tr, ml, mm, mr, bl, bm, br;
};

constexpr Glyphs kUnicode{"─", "│", "┌", "┬", "┐", "├", "┼", "┤", "└", "┴", "┘"};
constexpr Glyphs kAscii{"-", "|", "+", "+", "+", "+", "+", "+", "+", "+", "+"};

std::string_view AnsiStart(Color c) {
  switch (c) {
    case Color::kGreen:
      return "\x1b[32m";
    case Color::kYellow:
      return "\x1b[33m";
    case Color::kRed:
      return "\x1b[31m";
    case Color::kBlue:
      return "\x1b[34m";
    case Color::kDim:
      return "\x1b[2m";
    case Color::kNone:
      return "";
  }
  return "";
}

std::string Repeat(std::string_view s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out.append(s);
  return out;
}

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Cells are one line: flatten any line breaks a value carries (errors, shell output).
std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

}  // namespace

size_t DisplayWidth(std::string_view s) {
  size_t w = 0;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (IsContinuation(c) || c < 0x20 || c == 0x7f) continue;
    ++w;
  }
  return w;
}

std::string Ellipsize(std::string_view s, size_t max_width, bool unicode) {
  std::string flat = OneLine(s);
  if (DisplayWidth(flat) <= max_width) return flat;
  std::string_view tail = unicode ? "…" : "...";
  size_t tail_w = DisplayWidth(tail);
  if (max_width <= tail_w) return std::string(tail.substr(0, max_width));
  size_t budget = max_width - tail_w;
  std::string out;
  size_t w = 0;
  for (size_t i = 0; i < flat.size();) {
    size_t len = 1;
    while (i + len < flat.size() && IsContinuation(static_cast<unsigned char>(flat[i + len]))) {
      ++len;
    }
    if (w + 1 > budget) break;
    out.append(flat, i, len);
    ++w;
    i += len;
  }
  out.append(tail);
  return out;
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {
  for (std::string& h : headers_) h = TerminalSafe(OneLine(h));
}

void Table::AddRow(std::vector<Cell> row) {
  row.resize(headers_.size());
  for (Cell& c : row) c.text = TerminalSafe(OneLine(c.text));
  rows_.push_back(std::move(row));
}

std::string Table::Render(const TableStyle& style) const {
  const Glyphs& g = style.unicode ? kUnicode : kAscii;
  std::vector<size_t> widths(headers_.size());
  for (size_t i = 0; i < headers_.size(); ++i) widths[i] = DisplayWidth(headers_[i]);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i].text));
    }
  }
  auto rule = [&](std::string_view left, std::string_view mid, std::string_view right) {
    std::string line(left);
    for (size_t i = 0; i < widths.size(); ++i) {
      if (i > 0) line.append(mid);
      line.append(Repeat(g.h, widths[i] + 2));
    }
    line.append(right);
    line.push_back('\n');
    return line;
  };
  auto line = [&](const std::vector<Cell>& cells) {
    std::string out(g.v);
    for (size_t i = 0; i < cells.size(); ++i) {
      const Cell& c = cells[i];
      out.push_back(' ');
      bool colored = style.color && c.color != Color::kNone;
      if (colored) out.append(AnsiStart(c.color));
      out.append(c.text);
      if (colored) out.append("\x1b[0m");
      out.append(widths[i] - DisplayWidth(c.text), ' ');
      out.push_back(' ');
      out.append(g.v);
    }
    out.push_back('\n');
    return out;
  };
  std::vector<Cell> header_cells(headers_.begin(), headers_.end());
  std::string out = rule(g.tl, g.tm, g.tr);
  out.append(line(header_cells));
  out.append(rule(g.ml, g.mm, g.mr));
  for (const auto& row : rows_) out.append(line(row));
  out.append(rule(g.bl, g.bm, g.br));
  return out;
}

std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [k, _] : rows) width = std::max(width, DisplayWidth(k));
  std::string out;
  for (const auto& [k, v] : rows) {
    out.append(k);
    out.push_back(':');
    out.append(width - DisplayWidth(k) + 1, ' ');
    // Multi-line values (results, errors) continue under the value column.
    size_t start = 0;
    bool first = true;
    while (true) {
      size_t nl = v.find('\n', start);
      if (!first) out.append(width + 2, ' ');
      out.append(v, start, nl == std::string::npos ? std::string::npos : nl - start);
      out.push_back('\n');
      first = false;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  return out;
}

}  // namespace ferry::cli
