#include "engine/template.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <utility>

#include "core/suggest.h"

namespace ferry::engine {

struct ExprNode {
  enum class Op { kLiteral, kVar, kMember, kIndex, kCall, kNot, kAnd, kOr, kCmp };
  Op op = Op::kLiteral;
  Json literal;      // kLiteral
  std::string name;  // kVar: identifier; kMember: member; kCall: function; kCmp: operator
  std::vector<std::shared_ptr<const ExprNode>> args;
  size_t offset = 0;
};

namespace {

using NodePtr = std::shared_ptr<const ExprNode>;

// Deep enough for any real condition, shallow enough that "((((..." cannot exhaust the stack.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxExpressionBytes = 4096;

enum class Tok { kIdent, kNumber, kString, kPunct, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;  // identifier, punctuation, or the decoded string literal
  Json number;
  size_t offset = 0;
};

Error ParseError(size_t offset, const std::string& message) {
  return Error{ErrorCode::kInvalidArgument, "at offset " + std::to_string(offset) + ": " + message};
}

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
// '-' may appear inside identifiers (node ids like "build-x"): the language has no arithmetic.
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

Result<std::vector<Token>> Lex(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    Token t;
    t.offset = i;
    if (IsIdentStart(c)) {
      size_t j = i + 1;
      while (j < s.size() && IsIdentChar(s[j])) ++j;
      // A trailing '-' belongs to nothing; keep identifiers ending in a letter/digit/underscore.
      while (j > i + 1 && s[j - 1] == '-') --j;
      t.kind = Tok::kIdent;
      t.text = std::string(s.substr(i, j - i));
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '-' && i + 1 < s.size() &&
                std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      size_t j = i + 1;
      bool is_float = false;
      while (j < s.size()) {
        char d = s[j];
        if (std::isdigit(static_cast<unsigned char>(d))) {
          ++j;
        } else if ((d == '.' || d == 'e' || d == 'E') && j + 1 < s.size()) {
          is_float = true;
          ++j;
          if ((d == 'e' || d == 'E') && (s[j] == '+' || s[j] == '-')) ++j;
        } else {
          break;
        }
      }
      std::string text(s.substr(i, j - i));
      t.kind = Tok::kNumber;
      try {
        size_t used = 0;
        if (is_float) {
          double v = std::stod(text, &used);
          if (!std::isfinite(v)) throw std::out_of_range("inf");
          t.number = v;
        } else {
          t.number = static_cast<int64_t>(std::stoll(text, &used));
        }
        if (used != text.size()) throw std::invalid_argument("trailing");
      } catch (...) {
        return Fail(ParseError(i, "bad number '" + text + "'"));
      }
      i = j;
    } else if (c == '"' || c == '\'') {
      size_t j = i + 1;
      std::string value;
      bool closed = false;
      while (j < s.size()) {
        char d = s[j];
        if (d == c) {
          closed = true;
          ++j;
          break;
        }
        if (d == '\\' && j + 1 < s.size()) {
          char e = s[j + 1];
          switch (e) {
            case 'n':
              value += '\n';
              break;
            case 't':
              value += '\t';
              break;
            case 'r':
              value += '\r';
              break;
            case '\\':
              value += '\\';
              break;
            case '"':
              value += '"';
              break;
            case '\'':
              value += '\'';
              break;
            default:
              return Fail(ParseError(j, std::string("unknown escape '\\") + e + "'"));
          }
          j += 2;
          continue;
        }
        value += d;
        ++j;
      }
      if (!closed) return Fail(ParseError(i, "unterminated string"));
      t.kind = Tok::kString;
      t.text = std::move(value);
      i = j;
    } else {
      static constexpr std::string_view kTwo[] = {"==", "!=", "<=", ">="};
      std::string_view two = s.substr(i, 2);
      if (std::find(std::begin(kTwo), std::end(kTwo), two) != std::end(kTwo)) {
        t.text = std::string(two);
        i += 2;
      } else if (std::string_view("<>()[].,|").find(c) != std::string_view::npos) {
        t.text = std::string(1, c);
        ++i;
      } else {
        return Fail(ParseError(i, std::string("unexpected character '") + c + "'"));
      }
      t.kind = Tok::kPunct;
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.offset = s.size();
  out.push_back(std::move(end));
  return out;
}

const char* TypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::string:
      return "string";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    default:
      return "number";
  }
}

Error EvalError(const ExprNode& n, const std::string& message) {
  return Error{ErrorCode::kInvalidArgument,
               "at offset " + std::to_string(n.offset) + ": " + message};
}

// The functions templates may call, each also as a filter (`x | f(y)` is `f(x, y)`). One table
// for both sides: the parser refuses a name or an argument count it does not hold, so a typo
// fails at ingestion rather than at the node, after earlier nodes already ran.
struct Function {
  std::string_view name;
  size_t arity;  // the piped input counted
  Result<Json> (*call)(const ExprNode& n, const std::vector<Json>& args);
};

Result<Json> ChangeString(const ExprNode& n, const Json& v) {
  if (!v.is_string()) return Fail(EvalError(n, n.name + " needs a string, got " + TypeName(v)));
  std::string s = v.get<std::string>();
  if (n.name == "trim") {
    size_t b = s.find_first_not_of(" \t\r\n");
    size_t e = s.find_last_not_of(" \t\r\n");
    return Json(b == std::string::npos ? std::string() : s.substr(b, e - b + 1));
  }
  for (char& c : s) {
    auto uc = static_cast<unsigned char>(c);
    c = static_cast<char>(n.name == "upper" ? std::toupper(uc) : std::tolower(uc));
  }
  return Json(std::move(s));
}

const std::vector<Function>& Functions() {
  static const std::vector<Function> kFunctions = {
      {"default", 2,
       [](const ExprNode&, const std::vector<Json>& a) -> Result<Json> {
         return a[0].is_null() ? a[1] : a[0];
       }},
      {"json", 1,
       [](const ExprNode&, const std::vector<Json>& a) -> Result<Json> {
         return Json(DumpJson(a[0]));
       }},
      {"length", 1,
       [](const ExprNode& n, const std::vector<Json>& a) -> Result<Json> {
         const Json& v = a[0];
         if (v.is_string()) {
           // Characters, not bytes ("héllo" is 5): every byte but a UTF-8 continuation byte
           // begins one (the text is UTF-8, as JSON's is).
           const std::string& text = v.get_ref<const std::string&>();
           return Json(static_cast<int64_t>(std::count_if(text.begin(), text.end(), [](char c) {
             return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
           })));
         }
         if (v.is_array() || v.is_object()) return Json(static_cast<int64_t>(v.size()));
         if (v.is_null()) return Json(0);
         return Fail(EvalError(n, std::string("length of a ") + TypeName(v)));
       }},
      {"lower", 1,
       [](const ExprNode& n, const std::vector<Json>& a) { return ChangeString(n, a[0]); }},
      {"trim", 1,
       [](const ExprNode& n, const std::vector<Json>& a) { return ChangeString(n, a[0]); }},
      {"upper", 1,
       [](const ExprNode& n, const std::vector<Json>& a) { return ChangeString(n, a[0]); }},
  };
  return kFunctions;
}

const Function* FindFunction(std::string_view name) {
  for (const auto& f : Functions()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string Arguments(size_t n) {
  return std::to_string(n) + (n == 1 ? " argument" : " arguments");
}

// A call against the function table: the name, with a "did you mean", and the argument count,
// counted as written (a filter's input is not one of its arguments).
Status CheckCall(const std::string& name, size_t offset, size_t given, bool piped) {
  const Function* f = FindFunction(name);
  if (f == nullptr) {
    std::vector<std::string> names;
    std::string list;
    for (const auto& fn : Functions()) {
      names.emplace_back(fn.name);
      list += (list.empty() ? "" : ", ") + std::string(fn.name);
    }
    std::string msg = "unknown function '" + name + "'";
    if (auto s = ClosestMatch(name, names)) {
      msg += " (did you mean '" + *s + "'?)";
    } else {
      msg += "; the functions are " + list;
    }
    return Fail(ParseError(offset, msg));
  }
  if (given == f->arity) return {};
  const std::string extra = f->arity == 2 ? "y" : "";
  if (piped) {
    return Fail(ParseError(offset, "filter '" + name + "' takes " + Arguments(f->arity - 1) +
                                       " besides its input (x | " + name +
                                       (extra.empty() ? "" : "(" + extra + ")") + "), given " +
                                       Arguments(given - 1)));
  }
  return Fail(ParseError(offset, "function '" + name + "' takes " + Arguments(f->arity) + " (" +
                                     name + "(x" + (extra.empty() ? "" : ", " + extra) +
                                     ")), given " + Arguments(given)));
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Result<NodePtr> ParseAll() {
    auto e = ParseOr(0);
    if (!e) return e;
    if (Peek().kind != Tok::kEnd)
      return Fail(ParseError(Peek().offset, "unexpected '" + Describe(Peek()) + "'"));
    return e;
  }

 private:
  const Token& Peek() const { return toks_[pos_]; }
  Token Take() { return toks_[pos_ < toks_.size() - 1 ? pos_++ : pos_]; }
  bool IsPunct(std::string_view p) const { return Peek().kind == Tok::kPunct && Peek().text == p; }
  bool IsWord(std::string_view w) const { return Peek().kind == Tok::kIdent && Peek().text == w; }
  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd:
        return "end of expression";
      case Tok::kString:
        return "\"" + t.text + "\"";
      case Tok::kNumber:
        return t.number.dump();
      default:
        return t.text;
    }
  }
  Status Expect(std::string_view p) {
    if (!IsPunct(p)) {
      return Fail(ParseError(
          Peek().offset, "expected '" + std::string(p) + "', found '" + Describe(Peek()) + "'"));
    }
    ++pos_;
    return {};
  }
  static NodePtr Make(ExprNode::Op op, size_t offset, std::string name, std::vector<NodePtr> args) {
    auto n = std::make_shared<ExprNode>();
    n->op = op;
    n->offset = offset;
    n->name = std::move(name);
    n->args = std::move(args);
    return n;
  }
  Status CheckDepth(int depth) const {
    if (depth > kMaxDepth) return Fail(ParseError(Peek().offset, "expression nested too deeply"));
    return {};
  }

  Result<NodePtr> ParseOr(int depth) {
    if (auto s = CheckDepth(depth); !s) return Fail(s.error());
    auto lhs = ParseAnd(depth + 1);
    if (!lhs) return lhs;
    while (IsWord("or")) {
      size_t off = Take().offset;
      auto rhs = ParseAnd(depth + 1);
      if (!rhs) return rhs;
      lhs = Make(ExprNode::Op::kOr, off, "", {*lhs, *rhs});
    }
    return lhs;
  }
  Result<NodePtr> ParseAnd(int depth) {
    auto lhs = ParseNot(depth + 1);
    if (!lhs) return lhs;
    while (IsWord("and")) {
      size_t off = Take().offset;
      auto rhs = ParseNot(depth + 1);
      if (!rhs) return rhs;
      lhs = Make(ExprNode::Op::kAnd, off, "", {*lhs, *rhs});
    }
    return lhs;
  }
  Result<NodePtr> ParseNot(int depth) {
    if (auto s = CheckDepth(depth); !s) return Fail(s.error());
    if (IsWord("not")) {
      size_t off = Take().offset;
      auto inner = ParseNot(depth + 1);
      if (!inner) return inner;
      return Make(ExprNode::Op::kNot, off, "", {*inner});
    }
    return ParseCmp(depth + 1);
  }
  Result<NodePtr> ParseCmp(int depth) {
    auto lhs = ParsePipe(depth + 1);
    if (!lhs) return lhs;
    static constexpr std::string_view kOps[] = {"==", "!=", "<", "<=", ">", ">="};
    if (Peek().kind == Tok::kPunct &&
        std::find(std::begin(kOps), std::end(kOps), Peek().text) != std::end(kOps)) {
      Token op = Take();
      auto rhs = ParsePipe(depth + 1);
      if (!rhs) return rhs;
      return Make(ExprNode::Op::kCmp, op.offset, op.text, {*lhs, *rhs});
    }
    return lhs;
  }
  Result<NodePtr> ParsePipe(int depth) {
    auto value = ParsePostfix(depth + 1);
    if (!value) return value;
    while (IsPunct("|")) {
      Take();
      if (Peek().kind != Tok::kIdent) {
        return Fail(ParseError(Peek().offset, "expected a filter name after '|'"));
      }
      Token name = Take();
      std::vector<NodePtr> args{*value};
      if (IsPunct("(")) {
        auto more = ParseArgs(depth + 1);
        if (!more) return Fail(more.error());
        for (auto& a : *more) args.push_back(std::move(a));
      }
      if (auto s = CheckCall(name.text, name.offset, args.size(), true); !s) {
        return Fail(s.error());
      }
      value = Make(ExprNode::Op::kCall, name.offset, name.text, std::move(args));
    }
    return value;
  }
  Result<std::vector<NodePtr>> ParseArgs(int depth) {
    if (auto s = Expect("("); !s) return Fail(s.error());
    std::vector<NodePtr> args;
    if (IsPunct(")")) {
      Take();
      return args;
    }
    while (true) {
      auto a = ParseOr(depth + 1);
      if (!a) return Fail(a.error());
      args.push_back(*a);
      if (IsPunct(",")) {
        Take();
        continue;
      }
      if (auto s = Expect(")"); !s) return Fail(s.error());
      return args;
    }
  }
  Result<NodePtr> ParsePostfix(int depth) {
    auto value = ParsePrimary(depth + 1);
    if (!value) return value;
    while (true) {
      if (IsPunct(".")) {
        Take();
        if (Peek().kind != Tok::kIdent) {
          return Fail(ParseError(Peek().offset, "expected a name after '.'"));
        }
        Token name = Take();
        value = Make(ExprNode::Op::kMember, name.offset, name.text, {*value});
      } else if (IsPunct("[")) {
        size_t off = Take().offset;
        auto index = ParseOr(depth + 1);
        if (!index) return index;
        if (auto s = Expect("]"); !s) return Fail(s.error());
        value = Make(ExprNode::Op::kIndex, off, "", {*value, *index});
      } else {
        return value;
      }
    }
  }
  Result<NodePtr> ParsePrimary(int depth) {
    if (auto s = CheckDepth(depth); !s) return Fail(s.error());
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kNumber:
      case Tok::kString: {
        Token lit = Take();
        auto n = std::make_shared<ExprNode>();
        n->op = ExprNode::Op::kLiteral;
        n->offset = lit.offset;
        n->literal = lit.kind == Tok::kNumber ? lit.number : Json(lit.text);
        return NodePtr(n);
      }
      case Tok::kIdent: {
        Token id = Take();
        if (id.text == "true" || id.text == "false" || id.text == "null") {
          auto n = std::make_shared<ExprNode>();
          n->op = ExprNode::Op::kLiteral;
          n->offset = id.offset;
          n->literal = id.text == "null" ? Json(nullptr) : Json(id.text == "true");
          return NodePtr(n);
        }
        if (id.text == "and" || id.text == "or" || id.text == "not") {
          return Fail(ParseError(id.offset, "unexpected '" + id.text + "'"));
        }
        if (IsPunct("(")) {
          auto args = ParseArgs(depth + 1);
          if (!args) return Fail(args.error());
          if (auto s = CheckCall(id.text, id.offset, args->size(), false); !s) {
            return Fail(s.error());
          }
          return Make(ExprNode::Op::kCall, id.offset, id.text, std::move(*args));
        }
        return Make(ExprNode::Op::kVar, id.offset, id.text, {});
      }
      case Tok::kPunct:
        if (t.text == "(") {
          Take();
          auto inner = ParseOr(depth + 1);
          if (!inner) return inner;
          if (auto s = Expect(")"); !s) return Fail(s.error());
          return inner;
        }
        [[fallthrough]];
      default:
        if (t.kind == Tok::kEnd) return Fail(ParseError(t.offset, "expected a value"));
        return Fail(ParseError(t.offset, "unexpected '" + t.text + "'"));
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
};

// The static path a node denotes, if all of it is known at parse time.
std::optional<std::vector<std::string>> StaticPath(const ExprNode& n, size_t* offset) {
  switch (n.op) {
    case ExprNode::Op::kVar:
      *offset = n.offset;
      return std::vector<std::string>{n.name};
    case ExprNode::Op::kMember: {
      auto base = StaticPath(*n.args[0], offset);
      if (base) base->push_back(n.name);
      return base;
    }
    case ExprNode::Op::kIndex: {
      const ExprNode& idx = *n.args[1];
      if (idx.op != ExprNode::Op::kLiteral || !idx.literal.is_string()) return std::nullopt;
      auto base = StaticPath(*n.args[0], offset);
      if (base) base->push_back(idx.literal.get<std::string>());
      return base;
    }
    default:
      return std::nullopt;
  }
}

void CollectRefs(const ExprNode& n, std::vector<Reference>& out) {
  size_t offset = 0;
  if (auto path = StaticPath(n, &offset)) {
    out.push_back(Reference{std::move(*path), offset});
    return;
  }
  for (const auto& a : n.args) CollectRefs(*a, out);
}

Result<Json> Eval(const ExprNode& n, const Scope& scope);

Result<Json> CallFunction(const ExprNode& n, const Scope& scope) {
  const Function* f = FindFunction(n.name);
  // The parser admits only calls the table holds, with its argument count.
  if (f == nullptr || n.args.size() != f->arity) {
    return Fail(EvalError(n, "unknown function '" + n.name + "'"));
  }
  std::vector<Json> args;
  args.reserve(n.args.size());
  for (const auto& a : n.args) {
    auto v = Eval(*a, scope);
    if (!v) return v;
    args.push_back(std::move(*v));
  }
  return f->call(n, args);
}

Result<Json> Compare(const ExprNode& n, const Json& a, const Json& b) {
  const std::string& op = n.name;
  if (op == "==") return Json(a == b);
  if (op == "!=") return Json(a != b);
  bool ok_types = (a.is_number() && b.is_number()) || (a.is_string() && b.is_string());
  if (!ok_types) {
    return Fail(
        EvalError(n, std::string("cannot compare ") + TypeName(a) + " " + op + " " + TypeName(b)));
  }
  if (op == "<") return Json(a < b);
  if (op == "<=") return Json(a <= b);
  if (op == ">") return Json(a > b);
  return Json(a >= b);
}

Result<Json> Eval(const ExprNode& n, const Scope& scope) {
  switch (n.op) {
    case ExprNode::Op::kLiteral:
      return n.literal;
    case ExprNode::Op::kVar:
      if (n.name == "secrets") {
        return Fail(EvalError(n, "secrets must be read one at a time: secrets.NAME"));
      }
      if (scope.root != nullptr && scope.root->is_object()) {
        auto it = scope.root->find(n.name);
        if (it != scope.root->end()) return *it;
      }
      return Json(nullptr);
    case ExprNode::Op::kMember: {
      const ExprNode& base = *n.args[0];
      if (base.op == ExprNode::Op::kVar && base.name == "secrets") {
        std::optional<std::string> value;
        if (scope.secret) value = scope.secret(n.name);
        if (!value) return Fail(EvalError(n, "secret '" + n.name + "' is not set on this worker"));
        return Json(std::move(*value));
      }
      auto obj = Eval(base, scope);
      if (!obj) return obj;
      if (obj->is_object()) {
        auto it = obj->find(n.name);
        if (it != obj->end()) return *it;
      }
      return Json(nullptr);
    }
    case ExprNode::Op::kIndex: {
      auto obj = Eval(*n.args[0], scope);
      if (!obj) return obj;
      auto idx = Eval(*n.args[1], scope);
      if (!idx) return idx;
      if (obj->is_array() && idx->is_number_integer()) {
        auto i = idx->get<int64_t>();
        auto size = static_cast<int64_t>(obj->size());
        if (i < 0) i += size;
        if (i < 0 || i >= size) return Json(nullptr);
        return (*obj)[static_cast<size_t>(i)];
      }
      if (obj->is_object() && idx->is_string()) {
        auto it = obj->find(idx->get<std::string>());
        if (it != obj->end()) return *it;
      }
      return Json(nullptr);
    }
    case ExprNode::Op::kCall:
      return CallFunction(n, scope);
    case ExprNode::Op::kNot: {
      auto v = Eval(*n.args[0], scope);
      if (!v) return v;
      return Json(!Truthy(*v));
    }
    case ExprNode::Op::kAnd:
    case ExprNode::Op::kOr: {
      // Short-circuit, and yield a boolean (not the operand) so `when:` results are plain.
      auto a = Eval(*n.args[0], scope);
      if (!a) return a;
      bool ta = Truthy(*a);
      if (n.op == ExprNode::Op::kAnd && !ta) return Json(false);
      if (n.op == ExprNode::Op::kOr && ta) return Json(true);
      auto b = Eval(*n.args[1], scope);
      if (!b) return b;
      return Json(Truthy(*b));
    }
    case ExprNode::Op::kCmp: {
      auto a = Eval(*n.args[0], scope);
      if (!a) return a;
      auto b = Eval(*n.args[1], scope);
      if (!b) return b;
      return Compare(n, *a, *b);
    }
  }
  return Fail(EvalError(n, "bad expression"));
}

}  // namespace

Result<Expression> Expression::Parse(std::string_view text) {
  if (text.size() > kMaxExpressionBytes) {
    return Fail(ErrorCode::kInvalidArgument, "expression longer than 4096 bytes");
  }
  auto tokens = Lex(text);
  if (!tokens) return Fail(tokens.error());
  Parser parser(std::move(*tokens));
  auto root = parser.ParseAll();
  if (!root) return Fail(root.error());
  Expression e;
  e.text_ = std::string(text);
  e.root_ = std::move(*root);
  CollectRefs(*e.root_, e.refs_);
  return e;
}

Result<Json> Expression::Evaluate(const Scope& scope) const {
  if (!root_) return Json(nullptr);
  auto v = Eval(*root_, scope);
  // Quoted as written between its braces, so the text can be found in the definition.
  if (!v) return Fail(ErrorCode::kInvalidArgument, "{{" + text_ + "}}: " + v.error().message);
  return v;
}

bool Truthy(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return false;
    case Json::value_t::boolean:
      return v.get<bool>();
    case Json::value_t::string:
      return !v.get_ref<const std::string&>().empty();
    case Json::value_t::array:
    case Json::value_t::object:
      return !v.empty();
    case Json::value_t::number_float:
      return v.get<double>() != 0.0;
    case Json::value_t::number_integer:
      return v.get<int64_t>() != 0;
    case Json::value_t::number_unsigned:
      return v.get<uint64_t>() != 0;
    default:
      return true;
  }
}

std::string Stringify(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return DumpJson(v);
}

Result<Template> Template::Parse(std::string_view source) {
  Template t;
  size_t i = 0;
  std::string text;
  size_t text_start = 0;
  while (i < source.size()) {
    if (source.compare(i, 2, "{{") != 0) {
      if (text.empty()) text_start = i;
      text += source[i++];
      continue;
    }
    // Find the closing "}}" outside string literals.
    size_t start = i + 2;
    size_t j = start;
    char quote = 0;
    size_t close = std::string_view::npos;
    while (j < source.size()) {
      char c = source[j];
      if (quote != 0) {
        if (c == '\\') {
          j += 2;
          continue;
        }
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (source.compare(j, 2, "}}") == 0) {
        close = j;
        break;
      }
      ++j;
    }
    if (close == std::string_view::npos) {
      return Fail(ErrorCode::kInvalidArgument,
                  "at offset " + std::to_string(i) + ": '{{' without a closing '}}'");
    }
    std::string_view body = source.substr(start, close - start);
    auto expr = Expression::Parse(body);
    if (!expr) {
      // Re-base the expression's offset onto the whole string.
      std::string msg = expr.error().message;
      constexpr std::string_view kAt = "at offset ";
      if (msg.rfind(kAt, 0) == 0) {
        size_t end = msg.find(':');
        size_t off = static_cast<size_t>(std::stoul(msg.substr(kAt.size(), end - kAt.size())));
        msg = "at offset " + std::to_string(start + off) + msg.substr(end);
      }
      return Fail(ErrorCode::kInvalidArgument, msg + " in {{" + std::string(body) + "}}");
    }
    if (!text.empty()) t.parts_.push_back(Part{std::move(text), std::nullopt, text_start});
    text.clear();
    for (auto& r : expr->refs_) r.offset += start;
    t.parts_.push_back(Part{"", std::move(*expr), i});
    i = close + 2;
  }
  if (!text.empty()) t.parts_.push_back(Part{std::move(text), std::nullopt, text_start});

  auto blank = [](const Part& p) {
    return !p.expr && p.text.find_first_not_of(" \t\r\n") == std::string::npos;
  };
  size_t exprs = 0;
  bool others_blank = true;
  for (const auto& p : t.parts_) {
    if (p.expr)
      ++exprs;
    else if (!blank(p))
      others_blank = false;
  }
  t.whole_ = exprs == 1 && others_blank;
  return t;
}

bool Template::HasExpressions() const {
  return std::any_of(parts_.begin(), parts_.end(),
                     [](const Part& p) { return p.expr.has_value(); });
}

Result<Json> Template::Render(const Scope& scope) const {
  if (whole_) {
    for (const auto& p : parts_) {
      if (p.expr) return p.expr->Evaluate(scope);
    }
  }
  std::string out;
  for (const auto& p : parts_) {
    if (!p.expr) {
      out += p.text;
      continue;
    }
    auto v = p.expr->Evaluate(scope);
    if (!v) return v;
    out += Stringify(*v);
  }
  return Json(std::move(out));
}

Result<std::string> Template::RenderString(const Scope& scope) const {
  auto v = Render(scope);
  if (!v) return Fail(v.error());
  return Stringify(*v);
}

Result<Template> ParseCondition(std::string_view text) {
  if (text.find("{{") != std::string_view::npos) return Template::Parse(text);
  auto t = Template::Parse("{{" + std::string(text) + "}}");
  if (!t) {
    // Offsets in the message refer to the wrapped text; shift them back by the two braces.
    std::string msg = t.error().message;
    constexpr std::string_view kAt = "at offset ";
    if (msg.rfind(kAt, 0) == 0) {
      size_t end = msg.find(':');
      size_t off = static_cast<size_t>(std::stoul(msg.substr(kAt.size(), end - kAt.size())));
      msg = "at offset " + std::to_string(off >= 2 ? off - 2 : 0) + msg.substr(end);
    }
    return Fail(ErrorCode::kInvalidArgument, msg);
  }
  return t;
}

Result<Json> RenderJsonTemplates(const Json& value, const Scope& scope) {
  if (value.is_string()) {
    auto t = Template::Parse(value.get_ref<const std::string&>());
    if (!t) return Fail(t.error());
    return t->Render(scope);
  }
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& e : value) {
      auto r = RenderJsonTemplates(e, scope);
      if (!r) return r;
      out.push_back(std::move(*r));
    }
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      auto r = RenderJsonTemplates(it.value(), scope);
      if (!r) return r;
      out[it.key()] = std::move(*r);
    }
    return out;
  }
  return value;
}

}  // namespace ferry::engine
