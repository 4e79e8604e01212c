#include "sigil/api/kubernetes/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <regex>
#include <set>

namespace sigil::kube {
namespace {

struct Converter {
  size_t budget;

  Status Fail(const YAML::Node& n, const std::string& why) {
    YAML::Mark m = n.Mark();
    std::string where = m.is_null() ? "" : "line " + std::to_string(m.line + 1) + ": ";
    return InvalidArgumentError("error converting YAML to JSON: " + where + why);
  }

  static Json Scalar(const YAML::Node& n) {
    const std::string& s = n.Scalar();
    const std::string& tag = n.Tag();
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return s;
    if (tag != "?" && !tag.empty()) return s;  // other explicit tags: keep the text
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    static const std::regex kInt("[-+]?[0-9]+");
    static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
    if (std::regex_match(s, kInt)) {
      int64_t v = 0;
      std::string_view digits = s[0] == '+' ? std::string_view(s).substr(1) : std::string_view(s);
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (ec == std::errc() && p == digits.data() + digits.size()) return v;
      return s;  // out of range: keep as text rather than lose precision
    }
    if (std::regex_match(s, kFloat)) {
      try {
        return std::stod(s);
      } catch (const std::exception&) {
        return s;
      }
    }
    return s;
  }

  Result<Json> Convert(const YAML::Node& n, int depth) {
    if (depth > kMaxYamlDepth) return Fail(n, "the document is nested too deeply");
    if (budget == 0) return Fail(n, "the document expands to too many nodes (aliases?)");
    --budget;
    switch (n.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null: return Json(nullptr);
      case YAML::NodeType::Scalar: return Scalar(n);
      case YAML::NodeType::Sequence: {
        Json out = Json::array();
        for (const YAML::Node& item : n) {
          SIGIL_ASSIGN_OR_RETURN(Json v, Convert(item, depth + 1));
          out.push_back(std::move(v));
        }
        return out;
      }
      case YAML::NodeType::Map: {
        Json out = Json::object();
        for (const auto& kv : n) {
          if (!kv.first.IsScalar()) return Fail(kv.first, "a mapping key must be a scalar");
          const std::string& key = kv.first.Scalar();
          if (out.contains(key)) return Fail(kv.first, "a mapping key is repeated");
          SIGIL_ASSIGN_OR_RETURN(Json v, Convert(kv.second, depth + 1));
          out[key] = std::move(v);
        }
        return out;
      }
    }
    return Fail(n, "unsupported node");
  }
};

// Flow collections nest by brackets; count them before yaml-cpp's recursive parser does.
bool FlowDepthOk(std::string_view text) {
  int depth = 0;
  for (char c : text) {
    if (c == '[' || c == '{') {
      if (++depth > kMaxYamlDepth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

}  // namespace

Result<Json> YamlToJson(std::string_view text) {
  if (!FlowDepthOk(text)) return InvalidArgumentError("error converting YAML to JSON: the document is nested too deeply");
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    // e.msg is yaml-cpp's description of the syntax error; it does not quote the input.
    return InvalidArgumentError("error converting YAML to JSON: yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (docs.empty()) return Json(nullptr);
  if (docs.size() > 1) return InvalidArgumentError("error converting YAML to JSON: expected one document, found " + std::to_string(docs.size()));
  Converter c{4 * text.size() + 1024};
  try {
    return c.Convert(docs[0], 0);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("error converting YAML to JSON: yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace sigil::kube
