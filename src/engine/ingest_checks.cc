// Ingest: the checks that need the whole graph, run once every node is read: needs that name
// no node, cycles, and templates that do not parse or read what they may not.
#include <algorithm>
#include <functional>
#include <set>
#include <unordered_map>

#include "core/suggest.h"
#include "engine/ingest_internal.h"
#include "engine/secrets.h"
#include "engine/template.h"

namespace ferry::engine::ingest_internal {

void Ingester::CheckGraph() {
  std::vector<std::string> ids;
  for (const auto& n : wf_.nodes) ids.push_back(n.id);
  for (const auto& n : wf_.nodes) {
    for (const auto& need : n.needs) {
      YAML::Mark m = needs_marks_[n.id + "\n" + need];
      if (need == n.id) {
        Add(m, "nodes." + n.id + ".needs", "a node cannot need itself");
      } else if (wf_.FindNode(need) == nullptr) {
        std::string msg = "no node '" + need + "'";
        if (auto s = ClosestMatch(need, ids)) msg += " (did you mean '" + *s + "'?)";
        Add(m, "nodes." + n.id + ".needs", msg);
      }
    }
  }
  // Cycles: depth-first with colours; a grey target closes a cycle, read off the stack.
  std::unordered_map<std::string, int> color;
  std::vector<std::string> stack;
  std::set<std::set<std::string>> reported;
  std::function<void(const NodeDef&)> visit = [&](const NodeDef& n) {
    color[n.id] = 1;
    stack.push_back(n.id);
    for (const auto& need : n.needs) {
      const NodeDef* d = wf_.FindNode(need);
      if (d == nullptr || need == n.id) continue;
      if (color[need] == 1) {
        auto from = std::find(stack.begin(), stack.end(), need);
        std::vector<std::string> cyc(from, stack.end());
        std::set<std::string> key(cyc.begin(), cyc.end());
        if (reported.insert(key).second) {
          // The stack runs dependent -> dependency; print in execution order, starting from
          // the cycle's first node in definition order so the message is deterministic.
          std::reverse(cyc.begin(), cyc.end());
          auto first = std::min_element(cyc.begin(), cyc.end(), [&](const auto& x, const auto& y) {
            return node_marks_[x].pos < node_marks_[y].pos;
          });
          std::rotate(cyc.begin(), first, cyc.end());
          std::string text;
          for (const auto& id : cyc) text += id + " -> ";
          text += cyc.front();
          // At `need`'s entry naming the next node of the cycle: an edge to cut, where the
          // user would edit.
          Add(needs_marks_[need + "\n" + *(from + 1)], "nodes." + need + ".needs",
              "cycle: " + text);
        }
      } else if (color[need] == 0) {
        visit(*d);
      }
    }
    stack.pop_back();
    color[n.id] = 2;
  };
  for (const auto& n : wf_.nodes) {
    if (color[n.id] == 0) visit(n);
  }
}

std::set<std::string> Ingester::Ancestors(int idx) {
  std::set<std::string> out;
  std::vector<std::string> todo(wf_.nodes[static_cast<size_t>(idx)].needs);
  while (!todo.empty()) {
    std::string id = todo.back();
    todo.pop_back();
    if (!out.insert(id).second) continue;
    if (const NodeDef* d = wf_.FindNode(id))
      todo.insert(todo.end(), d->needs.begin(), d->needs.end());
  }
  return out;
}

void Ingester::CheckTemplates() {
  std::vector<std::string> input_names;
  for (const auto& in : wf_.inputs) input_names.push_back(in.name);
  std::vector<std::string> node_ids;
  for (const auto& n : wf_.nodes) node_ids.push_back(n.id);
  static const std::vector<std::string> kRoots = {"inputs", "nodes", "secrets", "run", "trigger"};
  static const std::vector<std::string> kRun = {"id", "workflow", "triggered_by"};
  static const std::vector<std::string> kTrigger = [] {
    std::vector<std::string> names(std::begin(kWebhookTriggerFields),
                                   std::end(kWebhookTriggerFields));
    names.insert(names.end(), std::begin(kCronTriggerFields), std::end(kCronTriggerFields));
    return names;
  }();
  static const std::string kTriggerList = [] {
    auto join = [](const auto& names) {
      std::string out;
      for (std::string_view n : names) out += (out.empty() ? "" : ", ") + std::string(n);
      return out;
    };
    return join(kWebhookTriggerFields) + " (webhooks) and " + join(kCronTriggerFields) + " (cron)";
  }();
  std::unordered_map<int, std::set<std::string>> ancestors;
  for (const auto& site : sites_) {
    auto t = site.condition ? ParseCondition(site.text) : Template::Parse(site.text);
    if (!t) {
      Add(site.mark, site.path, "bad template: " + t.error().message);
      continue;
    }
    if (!t->HasExpressions() && site.text.find("}}") != std::string::npos) {
      Add(site.mark, site.path, "'}}' without an opening '{{'");
      continue;
    }
    for (const auto& part : t->Parts()) {
      if (!part.expr) continue;
      for (const auto& ref : part.expr->References()) {
        const auto& p = ref.parts;
        std::string where = "{{" + part.expr->Text() + "}}: ";
        auto bad = [&](const std::string& msg) { Add(site.mark, site.path, where + msg); };
        const std::string& root = p[0];
        if (std::find(kRoots.begin(), kRoots.end(), root) == kRoots.end()) {
          std::string msg = "unknown name '" + root +
                            "'; templates read inputs, nodes.<id>.output, secrets.NAME, run "
                            "and trigger";
          if (auto s = ClosestMatch(root, kRoots)) msg += " (did you mean '" + *s + "'?)";
          bad(msg);
          continue;
        }
        if (root == "inputs") {
          if (p.size() < 2) continue;  // the whole inputs object
          if (std::find(input_names.begin(), input_names.end(), p[1]) == input_names.end()) {
            std::string msg = "no input '" + p[1] + "' is declared";
            if (auto s = ClosestMatch(p[1], input_names)) msg += " (did you mean '" + *s + "'?)";
            bad(msg);
          }
        } else if (root == "nodes") {
          if (p.size() < 3 || (p[2] != "output" && p[2] != "status")) {
            bad("read a node's result as nodes.<id>.output (or nodes.<id>.status)");
            continue;
          }
          if (site.node < 0) {
            bad("only node fields can read node outputs");
            continue;
          }
          if (wf_.FindNode(p[1]) == nullptr) {
            std::string msg = "no node '" + p[1] + "'";
            if (auto s = ClosestMatch(p[1], node_ids)) msg += " (did you mean '" + *s + "'?)";
            bad(msg);
            continue;
          }
          if (!ancestors.count(site.node)) ancestors[site.node] = Ancestors(site.node);
          if (ancestors[site.node].count(p[1]) == 0) {
            bad("node '" + p[1] +
                "' is not in this node's needs (directly or through "
                "another need), so its output may not exist yet; add it to needs");
          }
        } else if (root == "secrets") {
          if (p.size() < 2 || !IsValidSecretName(p[1])) {
            bad("read a secret as secrets.NAME");
          } else {
            read_secrets_.emplace(p[1], SiteRef{site.mark, site.path});
          }
        } else if (root == "run") {
          if (p.size() >= 2 && std::find(kRun.begin(), kRun.end(), p[1]) == kRun.end()) {
            bad("run has id, workflow and triggered_by, not '" + p[1] + "'");
          }
        } else if (root == "trigger") {
          if (p.size() >= 2 &&
              std::find(kTrigger.begin(), kTrigger.end(), p[1]) == kTrigger.end()) {
            std::string msg = "trigger has " + kTriggerList + ", not '" + p[1] + "'";
            if (auto s = ClosestMatch(p[1], kTrigger)) msg += " (did you mean '" + *s + "'?)";
            bad(msg);
          }
        }
      }
    }
  }
}

}  // namespace ferry::engine::ingest_internal
