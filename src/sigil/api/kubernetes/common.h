// api/kubernetes/common.h: the registry's Kubernetes vocabulary (JSON documents, field errors,
// metav1.Status errors, selectors) as the face uses it. Header only.
#pragma once

#include "sigil/registry/selectors.h"
#include "sigil/registry/validation.h"

namespace sigil::kube {

using registry::AlreadyExists;
using registry::ApiError;
using registry::BadRequest;
using registry::Conflict;
using registry::FieldError;
using registry::FieldErrors;
using registry::FieldSelector;
using registry::FromStatusMessage;
using registry::InternalError;
using registry::Invalid;
using registry::IsDns1123Label;
using registry::Json;
using registry::LabelSelector;
using registry::MethodNotAllowed;
using registry::ModifiedConflict;
using registry::NotFound;
using registry::UnsupportedMediaType;
using registry::ValidateLabelsAndAnnotations;

}  // namespace sigil::kube
