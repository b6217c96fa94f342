/**
 * The typed Kubernetes API objects (Kubernetes 1.28) that cdk8s-plus-28 ships. The charts use them directly so every
 * field of the hardened specs is explicit and type-checked; the constructs in ./constructs add the policy.
 */
export * from "cdk8s-plus-28/lib/imports/k8s.js";
