#include "sigil/store/object_store.h"

namespace sigil::store {

Result<std::optional<Object>> ObjectStore::Get(const std::string& key) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<barrier::Entry> e, barrier_->Get(key));
  if (!e) return std::optional<Object>();
  return std::optional<Object>(Object{e->key, std::move(e->value), e->mod_revision, e->create_revision});
}

Result<ObjectList> ObjectStore::List(const std::string& prefix, const std::string& start_after, size_t limit) {
  storage::RangeRequest req;
  req.prefix = prefix;
  req.start_after = start_after;
  req.limit = limit;
  SIGIL_ASSIGN_OR_RETURN(barrier::EntryList l, barrier_->Range(req));
  ObjectList out;
  out.revision = l.revision;
  out.more = l.more;
  out.items.reserve(l.entries.size());
  for (barrier::Entry& e : l.entries) {
    out.items.push_back(Object{std::move(e.key), std::move(e.value), e.mod_revision, e.create_revision});
  }
  return out;
}

Result<std::vector<std::string>> ObjectStore::Keys(const std::string& prefix) {
  storage::RangeRequest req;
  req.prefix = prefix;
  req.keys_only = true;
  SIGIL_ASSIGN_OR_RETURN(barrier::EntryList l, barrier_->Range(req));
  std::vector<std::string> out;
  out.reserve(l.entries.size());
  for (barrier::Entry& e : l.entries) out.push_back(std::move(e.key));
  return out;
}

namespace {

void AddSideEffects(const SideEffects& also, barrier::BarrierTxn* txn) {
  for (const SideEffects::Compare& c : also.compares) txn->compares.push_back({c.key, c.revision});
  for (const auto& [k, v] : also.puts) txn->ops.push_back(barrier::BarrierOp::Put(k, v.Clone()));
  for (const std::string& k : also.deletes) txn->ops.push_back(barrier::BarrierOp::Delete(k));
}

}  // namespace

Result<int64_t> ObjectStore::Create(const std::string& key, const SecretBytes& doc, const SideEffects& also) {
  barrier::BarrierTxn txn;
  txn.compares.push_back({key, 0});
  txn.ops.push_back(barrier::BarrierOp::Put(key, doc.Clone()));
  AddSideEffects(also, &txn);
  SIGIL_ASSIGN_OR_RETURN(storage::TxnResult r, barrier_->Commit(std::move(txn)));
  if (r.succeeded) return r.revision;
  if (also.compares.empty()) return AlreadyExistsError(key);
  SIGIL_ASSIGN_OR_RETURN(std::optional<barrier::Entry> now, barrier_->Get(key));
  if (now) return AlreadyExistsError(key);
  return AbortedError(key);
}

Result<int64_t> ObjectStore::Update(const std::string& key, const SecretBytes& doc, int64_t expected_revision,
                                    const SideEffects& also) {
  barrier::BarrierTxn txn;
  txn.compares.push_back({key, expected_revision});
  txn.ops.push_back(barrier::BarrierOp::Put(key, doc.Clone()));
  AddSideEffects(also, &txn);
  SIGIL_ASSIGN_OR_RETURN(storage::TxnResult r, barrier_->Commit(std::move(txn)));
  if (r.succeeded) return r.revision;
  SIGIL_ASSIGN_OR_RETURN(std::optional<barrier::Entry> now, barrier_->Get(key));
  if (!now) return NotFoundError(key);
  return AbortedError(key);
}

Result<int64_t> ObjectStore::Delete(const std::string& key, int64_t expected_revision, const SideEffects& also) {
  barrier::BarrierTxn txn;
  txn.compares.push_back({key, expected_revision});
  txn.ops.push_back(barrier::BarrierOp::Delete(key));
  AddSideEffects(also, &txn);
  SIGIL_ASSIGN_OR_RETURN(storage::TxnResult r, barrier_->Commit(std::move(txn)));
  if (r.succeeded) return r.revision;
  SIGIL_ASSIGN_OR_RETURN(std::optional<barrier::Entry> now, barrier_->Get(key));
  if (!now) return NotFoundError(key);
  return AbortedError(key);
}

Result<int64_t> ObjectStore::Apply(const SideEffects& also) {
  barrier::BarrierTxn txn;
  AddSideEffects(also, &txn);
  SIGIL_ASSIGN_OR_RETURN(storage::TxnResult r, barrier_->Commit(std::move(txn)));
  if (r.succeeded) return r.revision;
  return AbortedError("a compared key changed");
}

Result<std::unique_ptr<storage::WatchHandle>> ObjectStore::Watch(const std::string& prefix, int64_t after_revision,
                                                                 ObjectWatchCallback cb) {
  return barrier_->Watch(prefix, after_revision,
                         [cb = std::move(cb)](const std::vector<barrier::BarrierEvent>& events, const Status& error) {
                           std::vector<ObjectEvent> out;
                           out.reserve(events.size());
                           for (const barrier::BarrierEvent& e : events) {
                             ObjectEvent oe;
                             oe.type = e.type == storage::Event::Type::kPut ? ObjectEvent::Type::kPut : ObjectEvent::Type::kDelete;
                             oe.key = e.entry.key;
                             oe.revision = e.entry.mod_revision;
                             if (oe.type == ObjectEvent::Type::kPut) {
                               oe.object = Object{e.entry.key, e.entry.value.Clone(), e.entry.mod_revision, e.entry.create_revision};
                             }
                             if (e.prev) oe.prev = Object{e.prev->key, e.prev->value.Clone(), e.prev->mod_revision, e.prev->create_revision};
                             out.push_back(std::move(oe));
                           }
                           cb(out, error);
                         });
}

}  // namespace sigil::store
