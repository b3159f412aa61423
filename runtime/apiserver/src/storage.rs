//! The REST storage: create, get, list, update, patch and delete of objects with
//! Kubernetes semantics (resourceVersion preconditions, generation, managed fields,
//! finalizers, admission, schema validation). The HTTP layer and in-process
//! controllers both go through here, so they share one behaviour.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use flotilla_apimachinery::apply::{self as ssa};
use flotilla_apimachinery::names::{validate_label_key, validate_label_value, validate_name};
use flotilla_apimachinery::patch::{json_merge_patch, json_patch, strategic_merge_patch};
use flotilla_apimachinery::selector::{FieldOperator, FieldSelector, LabelSelector};
use flotilla_apimachinery::{ApiError, FieldError, NameFormat, ResourceDef};
use flotilla_store::{Compare, KeyValue, Op, Store, Txn, TxnResult};
use serde_json::{Value, json};

use crate::admission::{Admission, Operation, ValidatingAdmission};
use crate::objects::{self, meta};
use crate::registry::{Registry, Resource};

/// How unknown fields in a request are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(value: Option<&str>) -> Result<FieldValidation, ApiError> {
        match value {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// Options shared by every write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: String,
    pub field_validation: FieldValidation,
    /// Server-side apply: take ownership of conflicting fields.
    pub force: bool,
}

impl WriteOptions {
    pub fn manager(name: &str) -> WriteOptions {
        WriteOptions { field_manager: name.to_string(), ..Default::default() }
    }
}

/// The result of a write: the object as stored and any warnings for the client.
#[derive(Debug, Clone)]
pub struct Written {
    pub object: Value,
    pub created: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// A patch as received: its type and its body.
#[derive(Debug, Clone, Copy)]
pub struct Patch<'a> {
    pub kind: PatchType,
    pub body: &'a Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    Orphan,
    #[default]
    Background,
    Foreground,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

/// Selection and paging for list and watch.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Option<LabelSelector>,
    pub field_selector: Option<FieldSelector>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
}

impl ListOptions {
    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(sel) = &self.label_selector
            && !sel.matches(&meta::labels(obj))
        {
            return false;
        }
        if let Some(sel) = &self.field_selector
            && !sel.matches(obj)
        {
            return false;
        }
        true
    }
}

/// The part of a field selector that a store key answers: its `metadata.name` and
/// `metadata.namespace` terms. Lists and watches check it before decoding an object, so a
/// selector for one object (kube-rs' `watch_object`, client-go's single-object
/// `ListWatch`) costs a key comparison per other object rather than a JSON decode; and an
/// exact name narrows the key range to that object.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    /// The resource's key prefix (`/registry/GROUP/PLURAL/`).
    kind_prefix: String,
    namespaced: bool,
    /// (is the namespace term, operator, value)
    terms: Vec<(bool, FieldOperator, String)>,
    /// The exact name demanded, if any.
    exact_name: Option<String>,
}

impl KeyFilter {
    /// `None` when the selector says nothing a key can answer.
    pub fn new(res: &Resource, selector: Option<&FieldSelector>) -> Option<KeyFilter> {
        let selector = selector?;
        let terms: Vec<(bool, FieldOperator, String)> = selector
            .requirements()
            .iter()
            .filter_map(|r| match r.field.as_str() {
                "metadata.name" => Some((false, r.operator, r.value.clone())),
                // A cluster-scoped key has no namespace part; leave that term to the object.
                "metadata.namespace" if res.def.namespaced => Some((true, r.operator, r.value.clone())),
                _ => None,
            })
            .collect();
        if terms.is_empty() {
            return None;
        }
        Some(KeyFilter {
            kind_prefix: objects::kind_prefix(res),
            namespaced: res.def.namespaced,
            exact_name: selector.requires_exact_match("metadata.name").map(str::to_string),
            terms,
        })
    }

    /// Whether the object stored under `key` can match (false only when it cannot).
    pub fn admits(&self, key: &str) -> bool {
        let Some(rest) = key.strip_prefix(&self.kind_prefix) else { return true };
        let (namespace, name) = if self.namespaced {
            match rest.split_once('/') {
                Some(parts) => parts,
                None => return true,
            }
        } else {
            ("", rest)
        };
        self.terms.iter().all(|(is_namespace, operator, value)| {
            let equal = if *is_namespace { namespace == value } else { name == value };
            match operator {
                FieldOperator::Equals | FieldOperator::DoubleEquals => equal,
                FieldOperator::NotEquals => !equal,
            }
        })
    }

    /// The store prefix to read for a list or watch in `ns`: the object's own key when an
    /// exact name pins it down (keys that merely start with it are turned away by
    /// [`KeyFilter::admits`]), else `prefix`.
    pub fn narrow(&self, res: &Resource, ns: Option<&str>, prefix: String) -> String {
        match &self.exact_name {
            Some(name) if !res.def.namespaced || ns.is_some() => objects::object_key(res, ns, name),
            _ => prefix,
        }
    }
}

/// Paging facts about one list response.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub count: usize,
    pub resource_version: i64,
    pub continue_token: Option<String>,
    /// Objects after this page (unfiltered lists only; counted when the list began).
    pub remaining_item_count: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ListResult {
    pub items: Vec<Value>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
    pub remaining_item_count: Option<u64>,
}

/// Finalizers the server itself acts on.
pub const FINALIZER_ORPHAN: &str = "orphan";
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// The REST storage over a store and a registry.
#[derive(Clone)]
pub struct Storage {
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    admission: Vec<Arc<dyn Admission>>,
    validation: Vec<Arc<dyn ValidatingAdmission>>,
}

const MAX_CONFLICT_RETRIES: usize = 16;

impl Storage {
    pub fn new(store: Arc<dyn Store>, registry: Registry, admission: Vec<Arc<dyn Admission>>) -> Storage {
        Storage { store, registry, admission, validation: Vec::new() }
    }

    /// Adds validating hooks ([`ValidatingAdmission`]), run in order after `admission`.
    pub fn with_validation(mut self, hooks: Vec<Arc<dyn ValidatingAdmission>>) -> Storage {
        self.validation.extend(hooks);
        self
    }

    /// Runs the validating hooks on an object about to be written.
    async fn validate(&self, res: &Resource, op: Operation, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
        for hook in &self.validation {
            hook.validate(res, op, obj, old).await?;
        }
        Ok(())
    }

    async fn read(&self, key: &str) -> Result<Option<KeyValue>, ApiError> {
        self.store.get(key).await.map_err(objects::store_error)
    }

    pub async fn get(&self, res: &Resource, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let key = objects::object_key(res, ns, name);
        match self.read(&key).await? {
            Some(kv) => objects::decode(res, &kv),
            None => Err(not_found(res, name)),
        }
    }

    pub async fn list(&self, res: &Resource, ns: Option<&str>, opts: &ListOptions) -> Result<ListResult, ApiError> {
        let mut items = Vec::new();
        let page = self
            .scan(res, ns, opts, &mut |obj| {
                items.push(obj);
                Ok(())
            })
            .await?;
        Ok(ListResult {
            items,
            resource_version: page.resource_version,
            continue_token: page.continue_token,
            remaining_item_count: page.remaining_item_count,
        })
    }

    /// Like `list`, but the items come back serialized as a JSON array body
    /// (`{...},{...}` without brackets): a large list never exists as a tree of values.
    pub async fn list_json(
        &self,
        res: &Resource,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<(Vec<u8>, ListPage), ApiError> {
        let mut json = Vec::new();
        let page = self
            .scan(res, ns, opts, &mut |obj| {
                if !json.is_empty() {
                    json.push(b',');
                }
                serde_json::to_writer(&mut json, &obj)
                    .map_err(|e| ApiError::internal(format!("cannot serialize a list item: {e}")))
            })
            .await?;
        Ok((json, page))
    }

    /// Walks the objects of a list in key order, handing each match to `visit`, and
    /// works out the paging (`continue`, `remainingItemCount`) as it goes.
    async fn scan(
        &self,
        res: &Resource,
        ns: Option<&str>,
        opts: &ListOptions,
        visit: &mut (dyn FnMut(Value) -> Result<(), ApiError> + Send),
    ) -> Result<ListPage, ApiError> {
        let key_filter = KeyFilter::new(res, opts.field_selector.as_ref());
        let mut prefix = objects::list_prefix(res, ns);
        if let Some(filter) = &key_filter {
            prefix = filter.narrow(res, ns, prefix);
        }
        let mut token = match &opts.continue_token {
            Some(token) => {
                let token = ContinueToken::decode(token)?;
                if !token.start_after.starts_with(&prefix) {
                    return Err(ApiError::bad_request("continue key is not valid for this list"));
                }
                Some(token)
            }
            None => None,
        };
        let mut start_after = token.as_ref().map(|t| t.start_after.clone());
        let mut list_revision = token.as_ref().map(|t| t.revision);
        let mut scanned = token.as_ref().map(|t| t.scanned).unwrap_or(0);
        let selective = opts.label_selector.is_some() || opts.field_selector.is_some();
        let limit = opts.limit.filter(|l| *l > 0);
        let mut matched = 0usize;
        let batch = limit.map(|l| l.max(64)).unwrap_or(1024);
        loop {
            let range =
                self.store.range(&prefix, start_after.as_deref(), Some(batch)).await.map_err(objects::store_error)?;
            let revision = *list_revision.get_or_insert(range.revision);
            for (index, kv) in range.kvs.iter().enumerate() {
                scanned += 1;
                // Not a match: nothing changes but the count of scanned keys.
                if key_filter.as_ref().is_some_and(|f| !f.admits(&kv.key)) {
                    continue;
                }
                let obj = objects::decode(res, kv)?;
                if opts.matches(&obj) {
                    visit(obj)?;
                    matched += 1;
                }
                if let Some(limit) = limit
                    && matched >= limit
                {
                    let more = range.more || index + 1 < range.kvs.len();
                    if !more {
                        return Ok(ListPage { count: matched, resource_version: revision, ..Default::default() });
                    }
                    // The total is counted once, on the first page, and carried in the token.
                    let total = match token.as_ref().and_then(|t| t.total) {
                        Some(total) => Some(total),
                        None if !selective => Some(self.store.count(&prefix).await.map_err(objects::store_error)?),
                        None => None,
                    };
                    let next = ContinueToken { revision, start_after: kv.key.clone(), scanned, total };
                    token = Some(next);
                    let next = token.as_ref().map(ContinueToken::encode);
                    return Ok(ListPage {
                        count: matched,
                        resource_version: revision,
                        continue_token: next,
                        remaining_item_count: total.map(|t| t.saturating_sub(scanned)),
                    });
                }
            }
            match range.kvs.last() {
                Some(last) if range.more => start_after = Some(last.key.clone()),
                _ => return Ok(ListPage { count: matched, resource_version: revision, ..Default::default() }),
            }
        }
    }

    /// Creates an object. `ns` is the request's namespace for namespaced kinds.
    pub async fn create(
        &self,
        res: &Resource,
        ns: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.create_object(res, ns, obj, opts, false).await
    }

    /// `managed_fields_done`: server-side apply already computed managedFields.
    async fn create_object(
        &self,
        res: &Resource,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
        managed_fields_done: bool,
    ) -> Result<Written, ApiError> {
        check_type(res, &obj)?;
        let ns = request_namespace(res, ns, &obj)?;
        if !meta::resource_version(&obj).is_empty() {
            return Err(ApiError::bad_request("resourceVersion should not be set on objects to be created"));
        }
        if meta::name(&obj).is_empty()
            && let Some(prefix) = meta::str_field(&obj, "generateName").map(str::to_string)
        {
            let name = format!("{prefix}{}", random_suffix());
            meta::set(&mut obj, "name", Value::String(name));
        }
        let name = meta::name(&obj).to_string();
        if let Some(ns) = &ns {
            self.check_namespace_open(ns).await?;
            meta::set(&mut obj, "namespace", Value::String(ns.clone()));
        } else {
            meta::remove(&mut obj, "namespace");
        }
        let mut warnings = Vec::new();
        // The status subresource owns status: a create starts without one.
        if res.def.status_subresource {
            strip_status(&mut obj);
        }
        self.prepare(res, Operation::Create, &mut obj, None, opts, &mut warnings)?;
        self.validate(res, Operation::Create, &obj, None).await?;
        for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
            meta::remove(&mut obj, field);
        }
        meta::set(&mut obj, "uid", Value::String(uuid::Uuid::new_v4().to_string()));
        meta::set(&mut obj, "creationTimestamp", Value::String(objects::now_rfc3339()));
        meta::set(&mut obj, "generation", json!(1));
        if !managed_fields_done {
            ssa::record_update(
                None,
                &mut obj,
                &opts.field_manager,
                None,
                res.merge_strategy(),
                &res.api_version(),
                &objects::now_rfc3339(),
            );
        }
        self.commit_create(res, ns.as_deref(), &name, obj, opts, warnings).await
    }

    /// New content may not enter a namespace that is missing or terminating.
    async fn check_namespace_open(&self, ns: &str) -> Result<(), ApiError> {
        let Some(kv) = self.read(&objects::namespace_key(ns)).await? else {
            return Err(namespace_not_found(ns));
        };
        let terminating =
            serde_json::from_slice::<Value>(&kv.value).ok().is_some_and(|n| meta::deletion_timestamp(&n).is_some());
        if terminating {
            return Err(ApiError::forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            )));
        }
        Ok(())
    }

    async fn commit_create(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        opts: &WriteOptions,
        warnings: Vec<String>,
    ) -> Result<Written, ApiError> {
        let key = objects::object_key(res, ns, name);
        let mut compares = vec![Compare::ModRevision(key.clone(), 0)];
        if let Some(ns) = ns {
            compares.push(Compare::Exists(objects::namespace_key(ns)));
        }
        if opts.dry_run {
            if self.read(&key).await?.is_some() {
                return Err(ApiError::already_exists(&res.group_resource(), name).about(
                    &res.def.group,
                    &res.def.plural,
                    name,
                ));
            }
            return Ok(Written { object: obj, created: true, warnings });
        }
        let value = objects::encode(&obj)?;
        let result = self
            .store
            .txn(Txn { compares, ops: vec![Op::Put { key: key.clone(), value: value.clone() }] })
            .await
            .map_err(objects::store_error)?;
        match result {
            TxnResult::Succeeded { revision } => {
                let object = objects::decode_at(res, &key, &value, revision)?;
                Ok(Written { object, created: true, warnings })
            }
            TxnResult::Failed { current, .. } => {
                let exists = current.iter().any(|(k, v)| k == &key && v.is_some());
                if exists {
                    Err(ApiError::already_exists(&res.group_resource(), name).about(
                        &res.def.group,
                        &res.def.plural,
                        name,
                    ))
                } else {
                    Err(namespace_not_found(ns.unwrap_or_default()))
                }
            }
        }
    }

    /// Replaces an object (PUT). `subresource` is None or `status`.
    pub async fn update(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_type(res, &obj)?;
        let body_name = meta::name(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        request_namespace(res, ns, &obj)?;
        let precondition = meta::resource_version(&obj).to_string();
        for _ in 0..MAX_CONFLICT_RETRIES {
            let key = objects::object_key(res, ns, name);
            let Some(kv) = self.read(&key).await? else {
                return Err(not_found(res, name));
            };
            if !precondition.is_empty() && precondition != kv.mod_revision.to_string() {
                return Err(conflict(res, name));
            }
            let old = objects::decode(res, &kv)?;
            let new = obj.clone();
            match self.commit_update(res, ns, name, &kv, old, new, subresource, opts, false).await {
                Err(UpdateError::Conflict) if precondition.is_empty() => continue,
                Err(UpdateError::Conflict) => return Err(conflict(res, name)),
                Err(UpdateError::Api(e)) => return Err(e),
                Ok(written) => return Ok(written),
            }
        }
        Err(conflict(res, name))
    }

    /// Applies a patch of the given type to the latest object, retrying on races.
    pub async fn patch(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        patch: Patch<'_>,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let Patch { kind: patch_type, body: patch } = patch;
        if patch_type == PatchType::Apply && opts.field_manager.is_empty() {
            return Err(ApiError::bad_request("PATCH /apply requires fieldManager to be set"));
        }
        for _ in 0..MAX_CONFLICT_RETRIES {
            let key = objects::object_key(res, ns, name);
            let Some(kv) = self.read(&key).await? else {
                if patch_type == PatchType::Apply && subresource.is_none() {
                    return self.apply_create(res, ns, name, patch, opts).await;
                }
                return Err(not_found(res, name));
            };
            let old = objects::decode(res, &kv)?;
            let mut new = old.clone();
            let mut apply_done = false;
            match patch_type {
                PatchType::Merge => json_merge_patch(&mut new, patch),
                PatchType::Json => json_patch(&mut new, patch)
                    .map_err(|e| ApiError::new(422, "Invalid", format!("the JSON patch could not be applied: {e}")))?,
                PatchType::Strategic => strategic_merge_patch(&mut new, patch, res.merge_strategy()).map_err(|e| {
                    ApiError::new(422, "Invalid", format!("the strategic merge patch could not be applied: {e}"))
                })?,
                PatchType::Apply => {
                    check_type(res, patch)?;
                    let config_name = meta::name(patch);
                    if !config_name.is_empty() && config_name != name {
                        return Err(ApiError::bad_request(format!(
                            "the name of the object ({config_name}) does not match the name on the URL ({name})"
                        )));
                    }
                    new = ssa::apply_to_subresource(
                        Some(&old),
                        patch,
                        &opts.field_manager,
                        subresource,
                        opts.force,
                        res.merge_strategy(),
                        &res.api_version(),
                        &objects::now_rfc3339(),
                    )
                    .map_err(|c| c.to_api_error(&res.group_resource(), name))?;
                    apply_done = true;
                }
            }
            // A resourceVersion in the patch is a precondition, as in Kubernetes.
            let patched_rv = meta::resource_version(&new).to_string();
            if !patched_rv.is_empty() && patched_rv != kv.mod_revision.to_string() {
                return Err(conflict(res, name));
            }
            match self.commit_update(res, ns, name, &kv, old, new, subresource, opts, apply_done).await {
                Err(UpdateError::Conflict) => continue,
                Err(UpdateError::Api(e)) => return Err(e),
                Ok(written) => return Ok(written),
            }
        }
        Err(conflict(res, name))
    }

    async fn apply_create(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        config: &Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_type(res, config)?;
        let mut obj = ssa::apply(
            None,
            config,
            &opts.field_manager,
            opts.force,
            res.merge_strategy(),
            &res.api_version(),
            &objects::now_rfc3339(),
        )
        .map_err(|c| c.to_api_error(&res.group_resource(), name))?;
        meta::set(&mut obj, "name", Value::String(name.to_string()));
        self.create_object(res, ns, obj, opts, true).await
    }

    /// Shared tail of update and patch: status/spec split, admission, validation,
    /// generation, managed fields, finalization, and the compare-on-revision write.
    #[allow(clippy::too_many_arguments)]
    async fn commit_update(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        kv: &KeyValue,
        old: Value,
        mut new: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
        managed_fields_done: bool,
    ) -> Result<Written, UpdateError> {
        match subresource {
            None => {
                if res.def.status_subresource {
                    copy_status(&old, &mut new);
                }
            }
            // A subresource write changes only its part of the object; metadata stays as
            // stored, except managed fields the patch computed.
            Some(sub) => {
                let Some(part) = subresource_part(&res.def, sub) else {
                    return Err(UpdateError::Api(ApiError::path_not_found(&format!("{}/{sub}", res.group_resource()))));
                };
                let mut only_part = old.clone();
                replace_part(&mut only_part, &new, part);
                if managed_fields_done && let Some(mf) = meta::get(&new, "managedFields").cloned() {
                    meta::set(&mut only_part, "managedFields", mf);
                }
                new = only_part;
            }
        }
        // Fields the server owns cannot be changed by clients.
        for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
            match meta::get(&old, field).cloned() {
                Some(v) => meta::set(&mut new, field, v),
                None => meta::remove(&mut new, field),
            }
        }
        meta::set(&mut new, "name", Value::String(name.to_string()));
        match ns {
            Some(ns) if res.def.namespaced => meta::set(&mut new, "namespace", Value::String(ns.to_string())),
            _ => meta::remove(&mut new, "namespace"),
        }
        meta::remove(&mut new, "resourceVersion");
        let mut warnings = Vec::new();
        self.prepare(res, Operation::Update, &mut new, Some(&old), opts, &mut warnings).map_err(UpdateError::Api)?;
        if spec_changed(res, &old, &new) {
            meta::set(&mut new, "generation", json!(meta::generation(&old) + 1));
        }
        if !managed_fields_done {
            ssa::record_update(
                Some(&old),
                &mut new,
                &opts.field_manager,
                subresource,
                res.merge_strategy(),
                &res.api_version(),
                &objects::now_rfc3339(),
            );
        }
        // An object that is being deleted goes once its last finalizer is removed.
        if meta::deletion_timestamp(&new).is_some() && !blocks_deletion(res, &new) {
            if opts.dry_run {
                return Ok(Written { object: new, created: false, warnings });
            }
            let ops = vec![Op::Delete { key: kv.key.clone() }];
            return match self.write(kv, ops).await? {
                Some(_) => Ok(Written { object: new, created: false, warnings }),
                None => Err(UpdateError::Conflict),
            };
        }
        let mut old_cmp = old.clone();
        meta::remove(&mut old_cmp, "resourceVersion");
        if without_managed_time(&old_cmp) == without_managed_time(&new) {
            // No change: no write, no new resourceVersion, no watch event.
            return Ok(Written { object: old, created: false, warnings });
        }
        self.validate(res, Operation::Update, &new, Some(&old)).await.map_err(UpdateError::Api)?;
        if opts.dry_run {
            return Ok(Written { object: new, created: false, warnings });
        }
        let value = objects::encode(&new).map_err(UpdateError::Api)?;
        let ops = vec![Op::Put { key: kv.key.clone(), value: value.clone() }];
        match self.write(kv, ops).await? {
            Some(revision) => {
                let object = objects::decode_at(res, &kv.key, &value, revision).map_err(UpdateError::Api)?;
                Ok(Written { object, created: false, warnings })
            }
            None => Err(UpdateError::Conflict),
        }
    }

    /// Writes `ops` if `kv` is still current; None on a lost race.
    async fn write(&self, kv: &KeyValue, ops: Vec<Op>) -> Result<Option<i64>, UpdateError> {
        let txn = Txn { compares: vec![Compare::ModRevision(kv.key.clone(), kv.mod_revision)], ops };
        match self.store.txn(txn).await.map_err(|e| UpdateError::Api(objects::store_error(e)))? {
            TxnResult::Succeeded { revision } => Ok(Some(revision)),
            TxnResult::Failed { .. } => Ok(None),
        }
    }

    /// Deletes an object, or marks it for deletion while finalizers remain.
    /// Returns the object as last stored (with deletionTimestamp if it lingers).
    pub async fn delete(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Written, ApiError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let key = objects::object_key(res, ns, name);
            let Some(kv) = self.read(&key).await? else {
                return Err(not_found(res, name));
            };
            let old = objects::decode(res, &kv)?;
            if let Some(uid) = &opts.precondition_uid
                && uid != meta::uid(&old)
            {
                return Err(conflict_with(
                    res,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta::uid(&old)
                    ),
                ));
            }
            if let Some(rv) = &opts.precondition_resource_version
                && rv != meta::resource_version(&old)
            {
                return Err(conflict_with(
                    res,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        meta::resource_version(&old)
                    ),
                ));
            }
            for hook in &self.admission {
                let mut probe = old.clone();
                hook.admit(res, Operation::Delete, &mut probe, Some(&old))?;
            }
            let mut marked = old.clone();
            add_propagation_finalizer(&mut marked, opts.propagation);
            if !blocks_deletion(res, &marked) {
                if opts.dry_run {
                    return Ok(Written { object: old, created: false, warnings: vec![] });
                }
                match self.write(&kv, vec![Op::Delete { key: kv.key.clone() }]).await {
                    Ok(Some(_)) => return Ok(Written { object: old, created: false, warnings: vec![] }),
                    Ok(None) | Err(UpdateError::Conflict) => continue,
                    Err(UpdateError::Api(e)) => return Err(e),
                }
            }
            if meta::deletion_timestamp(&marked).is_none() {
                meta::set(&mut marked, "deletionTimestamp", Value::String(objects::now_rfc3339()));
                meta::set(&mut marked, "deletionGracePeriodSeconds", json!(0));
                meta::set(&mut marked, "generation", json!(meta::generation(&old) + 1));
            }
            if res.def.group.is_empty() && res.def.kind == "Namespace" {
                marked["status"]["phase"] = json!("Terminating");
            }
            if marked == old {
                return Ok(Written { object: old, created: false, warnings: vec![] });
            }
            if opts.dry_run {
                return Ok(Written { object: marked, created: false, warnings: vec![] });
            }
            meta::remove(&mut marked, "resourceVersion");
            let value = objects::encode(&marked)?;
            match self.write(&kv, vec![Op::Put { key: kv.key.clone(), value: value.clone() }]).await {
                Ok(Some(revision)) => {
                    let object = objects::decode_at(res, &kv.key, &value, revision)?;
                    return Ok(Written { object, created: false, warnings: vec![] });
                }
                Ok(None) | Err(UpdateError::Conflict) => continue,
                Err(UpdateError::Api(e)) => return Err(e),
            }
        }
        Err(conflict(res, name))
    }

    /// Admission, pruning, defaulting and validation of an object about to be written.
    fn prepare(
        &self,
        res: &Resource,
        op: Operation,
        obj: &mut Value,
        old: Option<&Value>,
        opts: &WriteOptions,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        for hook in &self.admission {
            hook.admit(res, op, obj, old)?;
        }
        let name = meta::name(obj).to_string();
        if let Some(schema) = &res.schema {
            let unknown = schema.prune(obj);
            if !unknown.is_empty() {
                match opts.field_validation {
                    FieldValidation::Strict => {
                        let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                        return Err(ApiError::bad_request(format!("strict decoding error: {}", list.join(", "))));
                    }
                    FieldValidation::Warn => {
                        warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")));
                    }
                    FieldValidation::Ignore => {}
                }
            }
            schema.apply_defaults(obj);
        }
        let mut errors = validate_metadata(res, obj);
        if let Some(schema) = &res.schema {
            errors.extend(schema.validate(obj, old));
        }
        if let Some(validator) = res.def.validator {
            errors.extend(validator(obj, old));
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(&res.def.kind, &res.def.group, &name, errors));
        }
        Ok(())
    }
}

enum UpdateError {
    Conflict,
    Api(ApiError),
}

impl From<ApiError> for UpdateError {
    fn from(e: ApiError) -> Self {
        UpdateError::Api(e)
    }
}

/// Whether an object cannot be removed yet: finalizers remain (for Namespaces also
/// `spec.finalizers`, which the namespace controller clears).
pub fn blocks_deletion(res: &Resource, obj: &Value) -> bool {
    if !meta::finalizers(obj).is_empty() {
        return true;
    }
    res.def.group.is_empty()
        && res.def.kind == "Namespace"
        && obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty())
}

fn add_propagation_finalizer(obj: &mut Value, propagation: Option<Propagation>) {
    let finalizer = match propagation {
        Some(Propagation::Orphan) => FINALIZER_ORPHAN,
        Some(Propagation::Foreground) => FINALIZER_FOREGROUND,
        _ => return,
    };
    let mut finalizers = meta::finalizers(obj);
    if !finalizers.iter().any(|f| f == finalizer) {
        finalizers.push(finalizer.to_string());
        meta::set(obj, "finalizers", json!(finalizers));
    }
}

fn not_found(res: &Resource, name: &str) -> ApiError {
    ApiError::not_found(&res.group_resource(), name).about(&res.def.group, &res.def.plural, name)
}

fn namespace_not_found(ns: &str) -> ApiError {
    ApiError::not_found("namespaces", ns).about("", "namespaces", ns)
}

fn conflict(res: &Resource, name: &str) -> ApiError {
    conflict_with(
        res,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
    )
}

fn conflict_with(res: &Resource, name: &str, detail: &str) -> ApiError {
    ApiError::conflict(&res.group_resource(), name, detail).about(&res.def.group, &res.def.plural, name)
}

/// The apiVersion and kind in a body must match the endpoint when present.
fn check_type(res: &Resource, obj: &Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON or YAML object"));
    }
    if let Some(api_version) = obj.get("apiVersion").and_then(Value::as_str)
        && !api_version.is_empty()
        && api_version != res.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && !kind.is_empty()
        && kind != res.def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            res.def.kind
        )));
    }
    Ok(())
}

/// The namespace a write goes to: the request's, which the body may repeat but not contradict.
fn request_namespace(res: &Resource, ns: Option<&str>, obj: &Value) -> Result<Option<String>, ApiError> {
    if !res.def.namespaced {
        return Ok(None);
    }
    let Some(ns) = ns else {
        return Err(ApiError::bad_request(format!(
            "{} is namespaced: the request must name a namespace",
            res.group_resource()
        )));
    };
    if let Some(body_ns) = meta::namespace(obj)
        && body_ns != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(Some(ns.to_string()))
}

fn validate_metadata(res: &Resource, obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name = meta::name(obj);
    if name.is_empty() {
        errors.push(FieldError::new(
            flotilla_apimachinery::CauseType::FieldValueRequired,
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    } else if let Err(msg) = validate_name(res.def.name_format, name) {
        errors.push(FieldError::invalid("metadata.name", &json!(name), msg));
    }
    if let Some(generate_name) = meta::str_field(obj, "generateName")
        && res.def.name_format != NameFormat::PathSegment
        && generate_name.len() > 248
    {
        errors.push(FieldError::invalid(
            "metadata.generateName",
            &json!(generate_name),
            "must be no more than 248 characters",
        ));
    }
    if let Some(labels) = meta::get(obj, "labels") {
        match labels.as_object() {
            Some(labels) => {
                for (key, value) in labels {
                    if let Err(msg) = validate_label_key(key) {
                        errors.push(FieldError::invalid("metadata.labels", &json!(key), msg));
                    }
                    match value.as_str() {
                        Some(v) => {
                            if let Err(msg) = validate_label_value(v) {
                                errors.push(FieldError::invalid(format!("metadata.labels[{key}]"), value, msg));
                            }
                        }
                        None => {
                            errors.push(FieldError::type_invalid(format!("metadata.labels[{key}]"), value, "string"))
                        }
                    }
                }
            }
            None if labels.is_null() => {}
            None => errors.push(FieldError::type_invalid("metadata.labels", labels, "object")),
        }
    }
    if let Some(annotations) = meta::get(obj, "annotations") {
        match annotations.as_object() {
            Some(map) => {
                let mut total = 0usize;
                for (key, value) in map {
                    total += key.len() + value.as_str().map(str::len).unwrap_or(0);
                    if let Err(msg) = validate_label_key(key) {
                        errors.push(FieldError::invalid("metadata.annotations", &json!(key), msg));
                    }
                    if !value.is_string() {
                        errors.push(FieldError::type_invalid(format!("metadata.annotations[{key}]"), value, "string"));
                    }
                }
                if total > 256 * 1024 {
                    errors.push(FieldError::new(
                        flotilla_apimachinery::CauseType::FieldValueTooLong,
                        "metadata.annotations",
                        format!("Too long: may not be more than 262144 bytes (got {total})"),
                    ));
                }
            }
            None if annotations.is_null() => {}
            None => errors.push(FieldError::type_invalid("metadata.annotations", annotations, "object")),
        }
    }
    if let Some(finalizers) = meta::get(obj, "finalizers")
        && !finalizers.is_null()
    {
        match finalizers.as_array() {
            Some(list) => {
                for (i, f) in list.iter().enumerate() {
                    match f.as_str() {
                        Some(name) if !name.is_empty() => {}
                        _ => errors.push(FieldError::invalid(
                            format!("metadata.finalizers[{i}]"),
                            f,
                            "must be a non-empty string",
                        )),
                    }
                }
            }
            None => errors.push(FieldError::type_invalid("metadata.finalizers", finalizers, "array")),
        }
    }
    errors
}

fn strip_status(obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.remove("status");
    }
}

fn copy_status(from: &Value, to: &mut Value) {
    match from.get("status") {
        Some(status) => {
            if let Some(map) = to.as_object_mut() {
                map.insert("status".into(), status.clone());
            }
        }
        None => strip_status(to),
    }
}

/// Whether anything but metadata (and status, where it is a subresource) changed.
fn spec_changed(res: &Resource, old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("metadata");
            if res.def.status_subresource {
                map.remove("status");
            }
        }
        v
    };
    strip(old) != strip(new) || (meta::deletion_timestamp(new).is_some() && meta::deletion_timestamp(old).is_none())
}

/// Equality ignoring the timestamps in managedFields (a no-op write bumps nothing).
fn without_managed_time(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(entries) = copy.pointer_mut("/metadata/managedFields").and_then(Value::as_array_mut) {
        for entry in entries {
            if let Some(map) = entry.as_object_mut() {
                map.remove("time");
            }
        }
    }
    copy
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let id = uuid::Uuid::new_v4();
    id.as_bytes().iter().take(5).map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect()
}

/// The opaque `continue` token: the list's revision, the last key returned, how many
/// keys were scanned so far and, for unfiltered lists, the total at the first page.
struct ContinueToken {
    revision: i64,
    start_after: String,
    scanned: u64,
    total: Option<u64>,
}

impl ContinueToken {
    fn encode(&self) -> String {
        let raw = json!({"v": "flotilla.dev/v1", "rv": self.revision, "start": self.start_after, "scanned": self.scanned, "total": self.total})
            .to_string();
        URL_SAFE_NO_PAD.encode(raw.as_bytes())
    }

    fn decode(token: &str) -> Result<ContinueToken, ApiError> {
        let invalid = || ApiError::bad_request("continue key is not valid: the token is malformed");
        let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).map_err(|_| invalid())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let revision = value.get("rv").and_then(Value::as_i64).ok_or_else(invalid)?;
        let start_after = value.get("start").and_then(Value::as_str).ok_or_else(invalid)?.to_string();
        let scanned = value.get("scanned").and_then(Value::as_u64).unwrap_or(0);
        let total = value.get("total").and_then(Value::as_u64);
        Ok(ContinueToken { revision, start_after, scanned, total })
    }
}

/// Whether `def` is `certificates.k8s.io` CertificateSigningRequest, the one kind with an
/// `approval` subresource.
fn is_csr(def: &ResourceDef) -> bool {
    def.group == "certificates.k8s.io" && def.kind == "CertificateSigningRequest"
}

/// The part of the object (a path of keys) that a write to subresource `sub` may change:
/// `status` for `/status`, the conditions for a CSR's `/approval` (`kubectl certificate
/// approve|deny`).
pub(crate) fn subresource_part(def: &ResourceDef, sub: &str) -> Option<&'static [&'static str]> {
    match sub {
        "status" if def.status_subresource => Some(&["status"]),
        "approval" if is_csr(def) => Some(&["status", "conditions"]),
        _ => None,
    }
}

/// Sets the value at `path` in `target` to the one in `from`, or removes it when `from` has
/// none.
fn replace_part(target: &mut Value, from: &Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else { return };
    let value = path.iter().try_fold(from, |v, key| v.get(*key)).cloned();
    let mut here = target;
    for key in parents {
        let Some(map) = here.as_object_mut() else { return };
        if value.is_none() && !map.contains_key(*key) {
            return;
        }
        here = map.entry(key.to_string()).or_insert_with(|| json!({}));
    }
    let Some(map) = here.as_object_mut() else { return };
    match value {
        Some(v) => {
            map.insert(last.to_string(), v);
        }
        None => {
            map.remove(*last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_round_trips() {
        let token =
            ContinueToken { revision: 42, start_after: "/registry/core/pods/ns/a".into(), scanned: 7, total: Some(9) }
                .encode();
        let back = ContinueToken::decode(&token).expect("decodes");
        assert_eq!(back.revision, 42);
        assert_eq!((back.scanned, back.total), (7, Some(9)));
        assert_eq!(back.start_after, "/registry/core/pods/ns/a");
        assert!(ContinueToken::decode("!!!").is_err());
    }
}
