// registry/selectors.h: label and field selectors (k8s.io/apimachinery pkg/labels,
// pkg/fields). Parse errors are kInvalidArgument with kube-apiserver's wording. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sigil/base/result.h"

namespace sigil::registry {

class LabelSelector {
 public:
  // "app=demo,tier in (x,y),!gone,env!=prod,has"
  static Result<LabelSelector> Parse(const std::string& text);
  bool Matches(const std::map<std::string, std::string>& labels) const;
  bool empty() const { return reqs_.empty(); }

 private:
  struct Requirement {
    enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kNotExists };
    std::string key;
    Op op;
    std::set<std::string> values;
  };
  std::vector<Requirement> reqs_;
};

class FieldSelector {
 public:
  // "metadata.name=x,type!=Opaque". `supported` lists the fields this resource accepts.
  static Result<FieldSelector> Parse(const std::string& text, const std::set<std::string>& supported);
  // `get` returns the value of a supported field for the object being tested.
  bool Matches(const std::function<std::string(const std::string&)>& get) const;

 private:
  struct Term {
    std::string field, value;
    bool equals;
  };
  std::vector<Term> terms_;
};

}  // namespace sigil::registry
