// api/kubernetes/tables.cc: Table output (kubectl get columns) and AGE.
#include <chrono>

#include "sigil/api/kubernetes/impl.h"

namespace sigil::kube {

std::string HumanDuration(int64_t seconds) {
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return std::to_string(seconds) + "s";
  int64_t minutes = seconds / 60;
  if (minutes < 10) {
    int64_t s = seconds % 60;
    return s == 0 ? std::to_string(minutes) + "m" : std::to_string(minutes) + "m" + std::to_string(s) + "s";
  }
  if (minutes < 180) return std::to_string(minutes) + "m";
  int64_t hours = seconds / 3600;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return m == 0 ? std::to_string(hours) + "h" : std::to_string(hours) + "h" + std::to_string(m) + "m";
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    int64_t h = hours % 24;
    return h == 0 ? std::to_string(hours / 24) + "d" : std::to_string(hours / 24) + "d" + std::to_string(h) + "h";
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    int64_t dy = (hours / 24) % 365;
    return dy == 0 ? std::to_string(hours / 24 / 365) + "y" : std::to_string(hours / 24 / 365) + "y" + std::to_string(dy) + "d";
  }
  return std::to_string(hours / 24 / 365) + "y";
}

int64_t ParseRfc3339(const std::string& s) {
  std::tm tm{};
  if (strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) return 0;
  return timegm(&tm);
}

Json KubernetesApi::Impl::NamespaceTable(const std::vector<Json>& items, const std::string& rv) {
  Json t = TableHeader(rv, {{"Name", "string", "name"}, {"Status", "string", ""}, {"Age", "string", ""}});
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
  for (const Json& o : items) {
    int64_t created = ParseRfc3339(o["metadata"].value("creationTimestamp", ""));
    t["rows"].push_back({{"cells", {o["metadata"].value("name", ""), o["status"].value("phase", ""), HumanDuration(now - created)}},
                         {"object", PartialMetadata(o)}});
  }
  return t;
}

Json KubernetesApi::Impl::TableHeader(const std::string& rv, std::initializer_list<std::array<const char*, 3>> cols) {
  Json defs = Json::array();
  for (const auto& c : cols) {
    defs.push_back({{"name", c[0]}, {"type", c[1]}, {"format", c[2]}, {"description", ""}, {"priority", 0}});
  }
  return Json{{"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", {{"resourceVersion", rv}}},
              {"columnDefinitions", defs}, {"rows", Json::array()}};
}

Json KubernetesApi::Impl::PartialMetadata(const Json& obj) {
  Json m = obj["metadata"];
  m.erase("managedFields");
  return Json{{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", m}};
}

Json KubernetesApi::Impl::SecretTable(const std::vector<Json>& items, const std::string& rv, const std::string& cont) {
  Json t = TableHeader(rv, {{"Name", "string", "name"}, {"Type", "string", ""}, {"Data", "string", ""}, {"Age", "string", ""}});
  if (!cont.empty()) t["metadata"]["continue"] = cont;
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
  for (const Json& o : items) {
    int64_t created = ParseRfc3339(o["metadata"].value("creationTimestamp", ""));
    size_t n = o.contains("data") ? o["data"].size() : 0;
    t["rows"].push_back({{"cells", {o["metadata"].value("name", ""), o.value("type", "Opaque"), n, HumanDuration(now - created)}},
                         {"object", PartialMetadata(o)}});
  }
  return t;
}

// kube-apiserver's printer for service accounts: Name, Secrets (how many it lists), Age.
Json KubernetesApi::Impl::ServiceAccountTable(const std::vector<Json>& items, const std::string& rv, const std::string& cont) {
  Json t = TableHeader(rv, {{"Name", "string", "name"}, {"Secrets", "string", ""}, {"Age", "string", ""}});
  if (!cont.empty()) t["metadata"]["continue"] = cont;
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
  for (const Json& o : items) {
    int64_t created = ParseRfc3339(o["metadata"].value("creationTimestamp", ""));
    size_t n = o.contains("secrets") && o["secrets"].is_array() ? o["secrets"].size() : 0;
    t["rows"].push_back({{"cells", {o["metadata"].value("name", ""), n, HumanDuration(now - created)}}, {"object", PartialMetadata(o)}});
  }
  return t;
}

Json KubernetesApi::Impl::TableFor(const registry::Resource& t, const std::vector<Json>& items, const std::string& rv, const std::string& cont) {
  if (IsSecret(t)) return SecretTable(items, rv, cont);
  if (IsServiceAccount(t)) return ServiceAccountTable(items, rv, cont);
  // kube-apiserver's printers: roles "Name, Created At"; bindings "Name, Role, Age" and, in
  // -o wide, "Users, Groups, ServiceAccounts".
  Json t_ = IsRole(t) ? TableHeader(rv, {{"Name", "string", "name"}, {"Created At", "date", ""}})
                       : TableHeader(rv, {{"Name", "string", "name"}, {"Role", "string", ""}, {"Age", "string", ""},
                                          {"Users", "string", ""}, {"Groups", "string", ""}, {"ServiceAccounts", "string", ""}});
  if (!IsRole(t)) {
    for (size_t i = 3; i < 6; ++i) t_["columnDefinitions"][i]["priority"] = 1;
  }
  if (!cont.empty()) t_["metadata"]["continue"] = cont;
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
  for (const Json& o : items) {
    std::string name = o["metadata"].value("name", "");
    std::string created = o["metadata"].value("creationTimestamp", "");
    Json cells;
    if (IsRole(t)) {
      cells = {name, created};
    } else {
      std::string users, groups, sas;
      auto add = [](std::string* list, const std::string& v) { *list += (list->empty() ? "" : ", ") + v; };
      for (const Json& sub : o.value("subjects", Json::array())) {
        std::string k = sub.value("kind", ""), n = sub.value("name", "");
        if (k == "User") add(&users, n);
        if (k == "Group") add(&groups, n);
        if (k == "ServiceAccount") add(&sas, sub.value("namespace", "") + "/" + n);
      }
      Json ref = o.value("roleRef", Json::object());
      cells = {name, ref.value("kind", "") + "/" + ref.value("name", ""), HumanDuration(now - ParseRfc3339(created)), users, groups, sas};
    }
    t_["rows"].push_back({{"cells", cells}, {"object", PartialMetadata(o)}});
  }
  return t_;
}

}  // namespace sigil::kube
