/**
 * The typed Kubernetes API objects (Kubernetes 1.28) that cdk8s-plus-28 ships. The charts use them directly so every
 * field of the hardened specs is explicit and type-checked; the constructs in ./constructs add the policy.
 *
 * Loaded with require() and re-exported by name, not with `export * from`: the module is 2.7 MB of CommonJS, and an
 * ES import of it makes Node's CommonJS lexer scan it all for its export names, and tsx's import hook before that;
 * together about a fifth of the manifests' synthesis (`pnpm bench:synth`). It is required past tsx's require hook
 * and with source maps off (@platform/cli/commonjs): its inline source map is half its bytes. Add a name here when a
 * chart needs one; test/manifests.test.ts fails on one that the module no longer exports.
 */
import { createRequire } from "node:module";
import { requireCommonJs } from "@platform/cli/commonjs";
import type * as K8s from "cdk8s-plus-28/lib/imports/k8s.js";

export const K8S_MODULE = "cdk8s-plus-28/lib/imports/k8s.js";
// The id written out, not K8S_MODULE: the main job's bundle inlines only a literal (scripts/bundle/).
const k8s = requireCommonJs(createRequire(import.meta.url), "cdk8s-plus-28/lib/imports/k8s.js") as typeof K8s;

export const IntOrString = k8s.IntOrString;
export type IntOrString = K8s.IntOrString;
export const Quantity = k8s.Quantity;
export type Quantity = K8s.Quantity;
export const KubeClusterRole = k8s.KubeClusterRole;
export type KubeClusterRole = K8s.KubeClusterRole;
export const KubeClusterRoleBinding = k8s.KubeClusterRoleBinding;
export type KubeClusterRoleBinding = K8s.KubeClusterRoleBinding;
export const KubeConfigMap = k8s.KubeConfigMap;
export type KubeConfigMap = K8s.KubeConfigMap;
export const KubeDeployment = k8s.KubeDeployment;
export type KubeDeployment = K8s.KubeDeployment;
export const KubeHorizontalPodAutoscalerV2 = k8s.KubeHorizontalPodAutoscalerV2;
export type KubeHorizontalPodAutoscalerV2 = K8s.KubeHorizontalPodAutoscalerV2;
export const KubeJob = k8s.KubeJob;
export type KubeJob = K8s.KubeJob;
export const KubeLimitRange = k8s.KubeLimitRange;
export type KubeLimitRange = K8s.KubeLimitRange;
export const KubeNamespace = k8s.KubeNamespace;
export type KubeNamespace = K8s.KubeNamespace;
export const KubeNetworkPolicy = k8s.KubeNetworkPolicy;
export type KubeNetworkPolicy = K8s.KubeNetworkPolicy;
export const KubePodDisruptionBudget = k8s.KubePodDisruptionBudget;
export type KubePodDisruptionBudget = K8s.KubePodDisruptionBudget;
export const KubePriorityClass = k8s.KubePriorityClass;
export type KubePriorityClass = K8s.KubePriorityClass;
export const KubeResourceQuota = k8s.KubeResourceQuota;
export type KubeResourceQuota = K8s.KubeResourceQuota;
export const KubeService = k8s.KubeService;
export type KubeService = K8s.KubeService;
export const KubeServiceAccount = k8s.KubeServiceAccount;
export type KubeServiceAccount = K8s.KubeServiceAccount;
export const KubeStatefulSet = k8s.KubeStatefulSet;
export type KubeStatefulSet = K8s.KubeStatefulSet;
export type { Container, NetworkPolicyPeer, PodSecurityContext, PodTemplateSpec, Volume } from "cdk8s-plus-28/lib/imports/k8s.js";
