//! End-to-end tests: hubs and simulated spokes as real processes over TLS on
//! loopback, driven by real clients (kubectl and kube-rs).
#![allow(dead_code)]

mod common;

mod bad_input;
mod cli;
mod durability;
mod hub_ha;
mod hub_ha_agent;
mod hub_kubectl;
mod kube_client;
mod placement;
mod policy;
mod registration;
mod rollout;
mod spoke_kubectl;
mod work;
