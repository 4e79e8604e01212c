// api/kubernetes/lists.cc: List (selectors, pages, resourceVersion semantics) and deletecollection.
#include <charconv>

#include "sigil/api/kubernetes/impl.h"

namespace sigil::kube {

// resourceVersion / resourceVersionMatch of a list, as kube-apiserver reads them. sigil keeps
// no old revisions in storage, so it serves the current state: "", "0" and NotOlderThan N
// (N <= current; a larger N is a 504 at once, see below) are
// honoured exactly; Exact N only when N is the current revision, else 410. Sets *exact.
std::optional<ApiError> KubernetesApi::Impl::CheckListVersion(const std::map<std::string, std::string>& q, int64_t* exact) {
  std::string rv = Param(q, "resourceVersion"), match = Param(q, "resourceVersionMatch");
  bool cont = !Param(q, "continue").empty();
  *exact = 0;
  if (!match.empty()) {
    if (match != "NotOlderThan" && match != "Exact") {
      return BadRequest("resourceVersionMatch: Unsupported value: \"" + match + "\": supported values: \"Exact\", \"NotOlderThan\"");
    }
    if (rv.empty()) return BadRequest("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided");
    if (cont) return BadRequest("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided");
    if (match == "Exact" && rv == "0") {
      return BadRequest("resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
    }
  }
  if (rv.empty() || rv == "0") return std::nullopt;
  if (cont) return BadRequest("specifying resource version is not allowed when using continue");
  int64_t n = 0;
  auto [p, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), n);
  if (ec != std::errc() || p != rv.data() + rv.size() || n < 0) return BadRequest("invalid resourceVersion: \"" + rv + "\"");
  // kube-apiserver waits up to 3 s for its cache to catch up with a revision from the future.
  // One sigil server's revision is the store's, so a larger one is not coming: answer at once
  // (retryAfterSeconds tells clients when to ask again) rather than hold a worker thread.
  if (int64_t cur = registry_->CurrentRevision(); cur < n) {
    return ApiError{504, "Timeout", "Too large resource version: " + rv + ", current: " + std::to_string(cur),
                    Json{{"causes", Json::array({{{"reason", "ResourceVersionTooLarge"}, {"message", "Too large resource version"}}})},
                         {"retryAfterSeconds", 1}}};
  }
  if (match == "Exact") *exact = n;
  return std::nullopt;
}

http::Response KubernetesApi::Impl::ListObjects(const registry::Resource& t, const http::Request& req,
                                                const std::map<std::string, std::string>& q, const std::string& ns) {
  registry::ListOptions opts;
  if (auto e = CheckListVersion(q, &opts.exact_revision)) return Fail(req, *e);
  auto labels = LabelSelector::Parse(Param(q, "labelSelector"));
  if (!labels.ok()) return Fail(req, BadRequest(labels.error().message()));
  auto fields = FieldSelector::Parse(Param(q, "fieldSelector"), t.strategy->FieldSelectors());
  if (!fields.ok()) return Fail(req, BadRequest(fields.error().message()));
  opts.labels = std::move(labels).value();
  opts.fields = std::move(fields).value();
  if (std::string l = Param(q, "limit"); !l.empty()) {
    long long v = -1;
    auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), v);
    if (ec != std::errc() || p != l.data() + l.size() || v < 0) return Fail(req, BadRequest("invalid limit: \"" + l + "\""));
    opts.limit = static_cast<size_t>(v);
  }
  opts.continue_token = Param(q, "continue");
  // kube-apiserver lists an absent namespace as empty; so does sigil.
  auto l = registry_->List(t, ns, opts);
  if (!l.ok()) return Fail(req, l.error());
  for (Json& obj : l->items) ShowAggregated(t, &obj);
  std::string rv = std::to_string(l->revision);
  if (WantsTable(req)) return Reply(req, 200, TableFor(t, l->items, rv, l->continue_token), kTableContentType);
  Json list = {{"kind", t.kind + "List"}, {"apiVersion", t.ApiVersion()}, {"metadata", {{"resourceVersion", rv}}}, {"items", Json::array()}};
  if (!l->continue_token.empty()) list["metadata"]["continue"] = l->continue_token;
  for (Json& i : l->items) {
    i.erase("kind");
    i.erase("apiVersion");
    list["items"].push_back(std::move(i));
  }
  return Reply(req, 200, list);
}

// DELETE on the collection: deletes every object the selectors match, one by one (as
// kube-apiserver does: not atomic), a Secret each with its tombstone version. Answers the list
// of the deleted objects.
http::Response KubernetesApi::Impl::DeleteCollection(const registry::Resource& t, const http::Request& req,
                                                     const std::map<std::string, std::string>& q, const std::string& ns) {
  if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
  registry::ListOptions sel;
  auto labels = LabelSelector::Parse(Param(q, "labelSelector"));
  if (!labels.ok()) return Fail(req, BadRequest(labels.error().message()));
  auto fields = FieldSelector::Parse(Param(q, "fieldSelector"), t.strategy->FieldSelectors());
  if (!fields.ok()) return Fail(req, BadRequest(fields.error().message()));
  sel.labels = std::move(labels).value();
  sel.fields = std::move(fields).value();
  registry::WriteOptions o;
  o.dry_run = Param(q, "dryRun") == "All";
  o.manager = Manager(req, q);
  if (!req.body().empty()) {
    auto body = DecodeBody(req);
    if (!body.ok) return Fail(req, body.error);
    if (!body.json.is_object()) return Fail(req, BadRequest("DeleteOptions must be a JSON object"));
    if (body.json.contains("dryRun") && body.json["dryRun"].is_array() && !body.json["dryRun"].empty() &&
        body.json["dryRun"][0] == "All") {
      o.dry_run = true;
    }
  }
  auto l = registry_->DeleteCollection(t, ns, sel, o);
  if (!l.ok()) return Fail(req, l.error());
  if (!o.dry_run) {
    for (size_t i = 0; i < l->items.size() && i < l->deletion_revisions.size(); ++i) {
      ObserveRbac(t, ns, l->items[i]["metadata"].value("name", ""), nullptr, l->deletion_revisions[i]);
    }
  }
  Json list = {{"kind", t.kind + "List"}, {"apiVersion", t.ApiVersion()}, {"metadata", {{"resourceVersion", std::to_string(l->revision)}}},
               {"items", Json::array()}};
  for (Json& obj : l->items) {
    obj.erase("kind");
    obj.erase("apiVersion");
    list["items"].push_back(std::move(obj));
  }
  return Reply(req, 200, list);
}

}  // namespace sigil::kube
