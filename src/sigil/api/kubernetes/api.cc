// api/kubernetes/api.cc: the Kubernetes face's public class: construction, registration on the
// router, shutdown.
#include <boost/asio/post.hpp>
#include <string>

#include "sigil/api/http/errors.h"
#include "sigil/api/kubernetes/impl.h"
#include "sigil/base/logging.h"

namespace sigil::kube {

KubernetesApi::Impl::Impl(registry::Registry* registry, Clock* clock, const KubernetesApi::Options& options)
    : registry_(registry), clock_(clock), token_reviewer_(options.token_reviewer), token_issuer_(options.token_issuer), sa_issuer_(options.service_account_issuer),
      authorizer_(options.authorizer), auditor_(options.auditor), pipeline_({options.authorizer, options.auditor}) {
  bookmark_thread_ = std::thread([this] { BookmarkLoop(); });
}

KubernetesApi::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> l(bookmark_mu_);
    bookmark_stop_ = true;
  }
  bookmark_cv_.notify_all();
  bookmark_thread_.join();
  // End every watch still streaming: its storage watch holds callbacks into this object.
  std::vector<std::shared_ptr<WatchState>> live;
  {
    std::lock_guard<std::mutex> l(bookmark_mu_);
    for (const std::weak_ptr<WatchState>& w : live_watches_) {
      if (std::shared_ptr<WatchState> st = w.lock()) live.push_back(std::move(st));
    }
    live_watches_.clear();
  }
  for (const std::shared_ptr<WatchState>& st : live) {
    std::unique_ptr<registry::WatchHandle> h;
    std::shared_ptr<http::StreamWriter> writer;
    {
      std::lock_guard<std::mutex> l(st->mu);
      st->closed = true;
      h = std::move(st->handle);
      writer = st->writer.lock();
    }
    h.reset();  // outside the lock: waits for a callback in progress, then no more run
    if (writer) writer->Close();
  }
}

Status KubernetesApi::Impl::EnsureDefaultNamespaces() { return registry_->EnsureDefaultNamespaces(); }

KubernetesApi::KubernetesApi(registry::Registry* registry, Clock* clock, const Options& options)
    : impl_(std::make_unique<Impl>(registry, clock, options)), limiter_(options.limiter), pool_(options.workers) {}

KubernetesApi::~KubernetesApi() {
  pool_.join();  // requests in flight finish first; then impl_ ends the watches
}

Status KubernetesApi::EnsureDefaultNamespaces() { return impl_->EnsureDefaultNamespaces(); }

namespace {

// A JSON answer indented by two spaces, as Go's json.Indent writes it.
void Indent(http::Response* res) {
  std::string_view type = (*res)[boost::beast::http::field::content_type];
  if (!type.starts_with("application/json")) return;
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(std::string_view(res->body().data(), res->body().size()), nullptr, false);
  if (j.is_discarded()) return;
  // The body may hold secret values: the old buffer is wiped as it is replaced (the parsed
  // tree's strings are freed unwiped, as everywhere nlohmann holds a value: threat model).
  std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  http::Body::value_type pretty(text.begin(), text.end());  // a zeroing buffer, as the old one
  internal::SecureZero(text.data(), text.size());
  res->body().swap(pretty);
  res->prepare_payload();
}

}  // namespace

std::optional<http::Response> KubernetesApi::Serve(const http::Request& req, const http::StreamStarter& start_stream,
                                                   const Identity* who, const std::string& remote) {
  return impl_->Serve(req, start_stream, who, remote);
}

void KubernetesApi::Register(http::Router* router, const std::function<http::Handler(http::Handler)>& guard) {
  http::Handler h = guard([this](const http::Request& req, const http::RequestContext& ctx, http::Responder respond) {
    // A seat among the requests in flight (core/inflight.h), before the request waits for a
    // worker; watches take none. Held until the answer is handed over.
    core::InflightLimiter::Seat seat;
    if (limiter_ != nullptr && !Impl::IsWatch(req)) {
      bool mutating = req.method() != http::Verb::get && req.method() != http::Verb::head;
      seat = limiter_->Acquire(mutating, core::InflightLimiter::CallerKey(ctx.identity.get(), ctx.remote_address));
      if (seat == nullptr) {
        // kube-apiserver's answer, which client-go and kubectl retry after Retry-After.
        ApiError e{429, "TooManyRequests", "Too many requests, please try again later.", Json{{"retryAfterSeconds", 1}}};
        http::Response res = ToResponse(req, ToReply(e));
        res.set("Retry-After", "1");
        return respond(std::move(res));
      }
    }
    // Copy the request: the connection's buffer is reused once the handler returns.
    auto copy = std::make_shared<http::Request>(req);
    boost::asio::post(pool_, [this, copy, seat, start = ctx.start_stream, who = ctx.identity, remote = ctx.remote_address,
                              respond = std::move(respond)] {
      auto streamed = std::make_shared<bool>(false);
      http::StreamStarter tracked = [start, streamed](http::Response head, std::chrono::seconds max) {
        *streamed = true;
        return start(std::move(head), max);
      };
      try {
        if (auto res = impl_->Serve(*copy, tracked, who.get(), remote)) {
          if (Impl::WantsPretty(*copy)) Indent(&*res);
          respond(std::move(*res));
        }
      } catch (const std::exception& e) {
        // A defect, not the client's doing; it must not take the worker (and the server) down.
        // A stream already started answers for itself (its writer ends with the connection).
        log::Error("kubernetes api: a request failed unexpectedly", {{"error", e.what()}});
        if (!*streamed) respond(http::ErrorResponse(*copy, Status(StatusCode::kInternal, "an internal error occurred")));
      }
    });
  });
  router->Handle("/api", h);
  router->Handle("/apis", h);
  router->HandlePrefix("/api/", h);
  router->HandlePrefix("/apis/", h);
  router->HandlePrefix("/openapi/", h);
  router->HandlePrefix("/sigil/", h);
  router->Handle("/.well-known/openid-configuration", h);
  router->Handle("/openid/v1/jwks", h);
}

}  // namespace sigil::kube
