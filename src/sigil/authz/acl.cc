#include "sigil/authz/acl.h"

#include <algorithm>

namespace sigil::authz {
namespace {

// Vault's NewACL merge of one more rule for a pattern already seen: deny is sticky and
// replaces every grant; otherwise grants add up.
void Merge(uint32_t& existing, uint32_t added) {
  if (existing & kCapDeny) return;
  existing = (added & kCapDeny) ? uint32_t{kCapDeny} : (existing | added);
}

void MergeInto(std::map<std::string, uint32_t, std::less<>>& rules, const std::string& key, uint32_t caps) {
  auto [it, inserted] = rules.try_emplace(key, caps);
  if (!inserted) Merge(it->second, caps);
}

std::string_view StripLeadingSlashes(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return path;
}

// One rule competing in step 2, with the fields Vault's priority order compares.
struct Candidate {
  size_t first;  // first '+' (segment rules) or length of the glob prefix
  bool prefix;
  int wildcards;
  std::string_view wc_path;
  uint32_t caps;
};

// Vault's `less`: whether `a` has lower priority than `b`. A total order on distinct rules,
// so the maximum is unique and does not depend on the order rules are visited in.
bool LowerPriority(const Candidate& a, const Candidate& b) {
  if (a.first != b.first) return a.first < b.first;
  if (a.prefix != b.prefix) return a.prefix;
  if (a.wildcards != b.wildcards) return a.wildcards > b.wildcards;
  if (a.wc_path.size() != b.wc_path.size()) return a.wc_path.size() < b.wc_path.size();
  return a.wc_path < b.wc_path;
}

}  // namespace

Acl Acl::Compile(const std::vector<const AclPolicy*>& policies, bool root) {
  Acl acl;
  acl.root_ = root;
  // Segment rules are keyed like Vault's segmentWildcardPaths: the written path, '*' included.
  std::map<std::string, uint32_t, std::less<>> segment;
  for (const AclPolicy* policy : policies) {
    if (policy == nullptr) continue;
    for (const AclRule& rule : policy->rules) {
      if (rule.has_plus) {
        MergeInto(segment, rule.prefix ? rule.path + "*" : rule.path, rule.capabilities);
      } else {
        MergeInto(rule.prefix ? acl.prefix_ : acl.exact_, rule.path, rule.capabilities);
      }
    }
  }
  for (const auto& [key, caps] : acl.prefix_) acl.prefix_lengths_.push_back(key.size());
  std::sort(acl.prefix_lengths_.begin(), acl.prefix_lengths_.end(), std::greater<>());
  acl.prefix_lengths_.erase(std::unique(acl.prefix_lengths_.begin(), acl.prefix_lengths_.end()), acl.prefix_lengths_.end());

  for (const auto& [full, caps] : segment) {
    SegmentRule r;
    r.prefix = full.ends_with('*');
    r.wc_path = r.prefix ? full.substr(0, full.size() - 1) : full;
    r.first_plus = full.find('+');  // has_plus guarantees one
    size_t start = 0;
    while (true) {
      size_t slash = r.wc_path.find('/', start);
      r.parts.push_back(r.wc_path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    r.wildcards = static_cast<int>(std::count(r.parts.begin(), r.parts.end(), "+"));
    r.caps = caps;
    acl.segment_.push_back(std::move(r));
  }
  return acl;
}

std::optional<uint32_t> Acl::Exact(std::string_view path) const {
  auto it = exact_.find(path);
  if (it == exact_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> Acl::NonExact(std::string_view path) const {
  std::optional<Candidate> best;
  // The longest glob prefix of `path` (Vault's prefixRules.LongestPrefix). Shorter globs would
  // lose to it on rule a anyway.
  for (size_t len : prefix_lengths_) {
    if (len > path.size()) continue;
    auto it = prefix_.find(path.substr(0, len));
    if (it != prefix_.end()) {
      best = Candidate{len, true, 0, it->first, it->second};
      break;
    }
  }
  if (segment_.empty()) return best ? std::optional<uint32_t>(best->caps) : std::nullopt;

  const size_t segments = static_cast<size_t>(std::count(path.begin(), path.end(), '/')) + 1;
  for (const SegmentRule& r : segment_) {
    const size_t k = r.parts.size();
    if (segments < k || (!r.prefix && segments != k)) continue;
    bool match = true;
    size_t start = 0;
    for (size_t i = 0; i < k && match; ++i) {
      size_t slash = path.find('/', start);
      std::string_view seg = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
      start = slash == std::string_view::npos ? path.size() : slash + 1;
      const std::string& part = r.parts[i];
      // Only the last part of a prefix rule matches as a string prefix; it then covers the
      // rest of the path too.
      match = part == "+" || part == seg || (r.prefix && i == k - 1 && seg.starts_with(part));
    }
    if (!match) continue;
    Candidate c{r.first_plus, r.prefix, r.wildcards, r.wc_path, r.caps};
    if (!best || LowerPriority(*best, c)) best = c;
  }
  return best ? std::optional<uint32_t>(best->caps) : std::nullopt;
}

uint32_t Acl::Capabilities(std::string_view path) const {
  if (root_) return kCapAllGrants;
  path = StripLeadingSlashes(path);
  if (auto caps = Exact(path)) return *caps;
  return NonExact(path).value_or(0);
}

uint32_t Acl::ListCapabilities(std::string_view path) const {
  if (root_) return kCapAllGrants;
  path = StripLeadingSlashes(path);
  const bool slash = path.ends_with('/');
  const std::string_view trimmed = slash ? path.substr(0, path.size() - 1) : path;
  if (auto caps = Exact(path)) return *caps;
  if (slash) {
    if (auto caps = Exact(trimmed)) return *caps;
  }
  if (auto caps = NonExact(path)) return *caps;
  if (slash) {
    if (auto caps = NonExact(trimmed)) return *caps;
  }
  return 0;
}

bool Acl::Allows(std::string_view path, Capability needed, bool needs_sudo) const {
  if (root_) return true;
  const uint32_t caps = needed == kCapList ? ListCapabilities(path) : Capabilities(path);
  if (needed == 0 || (caps & kCapDeny)) return false;
  if ((caps & needed) != needed) return false;
  return !needs_sudo || (caps & kCapSudo);
}

std::vector<std::string> Acl::SysCapabilities(std::string_view path) const {
  if (root_) return {"root"};
  return CapabilityList(ListCapabilities(path));
}

}  // namespace sigil::authz
