{{/* Chart name, possibly overridden. */}}
{{- define "whistle.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every resource name: <release>-whistle, or the release name if it contains the chart name. */}}
{{- define "whistle.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "whistle.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels common to every object of the release. */}}
{{- define "whistle.labels" -}}
helm.sh/chart: {{ include "whistle.chart" . }}
{{ include "whistle.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: whistle
{{- end -}}

{{- define "whistle.selectorLabels" -}}
app.kubernetes.io/name: {{ include "whistle.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Per-node helpers take a dict: {"root": $, "node": <nodes[] entry>}.
*/}}
{{- define "whistle.node.fullname" -}}
{{- printf "%s-%s" (include "whistle.fullname" .root) .node.name -}}
{{- end -}}

{{- define "whistle.node.selectorLabels" -}}
{{ include "whistle.selectorLabels" .root }}
app.kubernetes.io/component: node
whistle.io/node: {{ .node.name }}
{{- end -}}

{{- define "whistle.node.labels" -}}
{{ include "whistle.labels" .root }}
app.kubernetes.io/component: node
whistle.io/node: {{ .node.name }}
whistle.io/hosted-jurisdiction: {{ .node.hostedJurisdiction }}
{{- end -}}

{{/* gRPC Service name of a node (also the StatefulSet's governing Service). */}}
{{- define "whistle.node.grpcService" -}}
{{- include "whistle.node.fullname" . -}}
{{- end -}}

{{- define "whistle.node.metricsService" -}}
{{- printf "%s-metrics" (include "whistle.node.fullname" .) -}}
{{- end -}}

{{/* host:port of a node's gRPC Service, as other pods dial it. */}}
{{- define "whistle.node.grpcAddress" -}}
{{- printf "%s.%s.svc.%s:%d" (include "whistle.node.grpcService" .) .root.Release.Namespace .root.Values.clusterDomain (int .root.Values.ports.grpc) -}}
{{- end -}}

{{- define "whistle.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* WHISTLE_SHUTDOWN_GRACE_MS: terminationGracePeriodSeconds - 5 s, within 1..600 s. */}}
{{- define "whistle.shutdownGraceMs" -}}
{{- $ms := mul (sub (int .Values.terminationGracePeriodSeconds) 5) 1000 -}}
{{- if lt $ms 1000 }}{{ $ms = 1000 }}{{ end -}}
{{- if gt $ms 600000 }}{{ $ms = 600000 }}{{ end -}}
{{- $ms -}}
{{- end -}}

{{- define "whistle.configMapName" -}}
{{- printf "%s-config" (include "whistle.fullname" .) -}}
{{- end -}}

{{/* True (non-empty) when the release mounts a ConfigMap with topology and/or policy. */}}
{{- define "whistle.hasConfig" -}}
{{- if or .Values.topology .Values.policy -}}true{{- end -}}
{{- end -}}

{{/*
Checks the schema cannot express: node names unique, parents exist, no node is
its own ancestor, topology/policy are JSON, only one root. Fails with a message
naming the node. Included from every node template.
*/}}
{{- define "whistle.validate" -}}
{{- $names := dict -}}
{{- $parents := dict -}}
{{- $roots := list -}}
{{- range $i, $n := .Values.nodes -}}
  {{- if hasKey $names $n.name -}}
    {{- fail (printf "nodes[%d].name: node %q is listed twice; node names must be unique" $i $n.name) -}}
  {{- end -}}
  {{- $_ := set $names $n.name $n.hostedJurisdiction -}}
  {{- $_ := set $parents $n.name (default "" $n.parent) -}}
  {{- if and $n.parent $n.parentAddress -}}
    {{- fail (printf "nodes[%d]: node %q sets both parent and parentAddress; use parent for a node of this release, parentAddress for one outside it" $i $n.name) -}}
  {{- end -}}
  {{- if not (or $n.parent $n.parentAddress) -}}{{- $roots = append $roots $n.name -}}{{- end -}}
{{- end -}}
{{- range $i, $n := .Values.nodes -}}
  {{- if $n.parent -}}
    {{- if eq $n.parent $n.name -}}
      {{- fail (printf "nodes[%d].parent: node %q cannot be its own parent" $i $n.name) -}}
    {{- end -}}
    {{- if not (hasKey $names $n.parent) -}}
      {{- fail (printf "nodes[%d].parent: node %q names parent %q, which is not in nodes[] (known: %s)" $i $n.name $n.parent (keys $names | sortAlpha | join ", ")) -}}
    {{- end -}}
  {{- end -}}
  {{- /* walk up at most len(nodes) steps: still climbing after that means a cycle */ -}}
  {{- $cur := $n.name -}}
  {{- range $step := until (len $.Values.nodes) -}}
    {{- $cur = get $parents $cur | default "" -}}
  {{- end -}}
  {{- if $cur -}}
    {{- fail (printf "nodes[%d].parent: node %q is in a parent cycle" $i $n.name) -}}
  {{- end -}}
  {{- $svc := include "whistle.node.metricsService" (dict "root" $ "node" $n) -}}
  {{- if gt (len $svc) 63 -}}
    {{- fail (printf "nodes[%d].name: resource name %q is longer than 63 characters; shorten the release name, fullnameOverride or the node name" $i $svc) -}}
  {{- end -}}
{{- end -}}
{{- if gt (len $roots) 1 -}}
  {{- fail (printf "nodes: at most one node may have no parent (the root of the tree); found %d: %s. Set parent (a node of this release) or parentAddress (a node outside it)" (len $roots) (join ", " $roots)) -}}
{{- end -}}
{{- range $key := list "topology" "policy" -}}
  {{- $text := get $.Values $key -}}
  {{- if $text -}}
    {{- $parsed := fromJson $text -}}
    {{- if hasKey $parsed "Error" -}}
      {{- fail (printf "%s: not valid JSON: %s" $key (get $parsed "Error")) -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) -}}
  {{- fail "tls.existingSecret: required when tls.enabled is true (a Secret with tls.crt, tls.key and ca.crt)" -}}
{{- end -}}
{{- end -}}
