// An attempt's workspace and the artifact contract (instructions.md states it to the agent).
//
// In: the workflow source (workflow.yaml or workflow.json, redacted), failure.json (the failure
// and the redacted inputs), events.json (recent run events, redacted), instructions.md.
// Out: classification.json ({"classification", "summary", "confidence"}), developer_note.md and,
// only for workflow_fixable and node_workaround, an edited workflow file in place.
//
// ReadArtifacts enforces it: nothing but those files (no directories, symlinks or other file
// types), each within its size limit, well-formed, and the source changed exactly when the class
// is fixable. Files are opened with O_NOFOLLOW, so a symlink swapped in after the check is not
// followed either.
//
// Thread-safety: free functions; each workspace belongs to one attempt.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/result.h"

namespace ferry::remediation {

inline constexpr std::string_view kClassificationFile = "classification.json";
inline constexpr std::string_view kNoteFile = "developer_note.md";
inline constexpr std::string_view kFailureFile = "failure.json";
inline constexpr std::string_view kEventsFile = "events.json";
inline constexpr std::string_view kInstructionsFile = "instructions.md";

// The five classes; the first two are the fixable ones.
bool IsClassification(std::string_view c);
bool IsFixable(std::string_view c);

// "workflow.yaml" or "workflow.json".
std::string WorkflowFileName(std::string_view format);

struct WorkspaceFiles {
  std::string workflow_file;  // WorkflowFileName(...)
  std::string source;
  Json failure;
  Json events;
};

// A fresh directory (mode 0700) under `root` ("" = $TMPDIR or /tmp) holding the inputs.
// Returns its absolute path.
Result<std::string> CreateWorkspace(const std::string& root, const std::string& candidate_id,
                                    const WorkspaceFiles& files);
// Removes the workspace and everything in it. Best effort.
void RemoveWorkspace(const std::string& dir);

// The text of instructions.md.
std::string InstructionsText(std::string_view workflow_file);

struct Artifacts {
  std::string classification;
  std::string summary;
  std::string confidence;  // as written, e.g. "0.8"
  std::string note;
  std::optional<std::string> edited_source;  // set when the workflow file changed
  Json hashes = Json::object();              // file -> sha256 of each artifact
};

// kInvalidArgument with the reason when the contract is broken.
Result<Artifacts> ReadArtifacts(const std::string& dir, const std::string& workflow_file,
                                const std::string& original_source);

}  // namespace ferry::remediation
