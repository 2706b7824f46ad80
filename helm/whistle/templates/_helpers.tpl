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

{{/*
--child-jurisdictions of a node: the hostedJurisdiction of every node whose
parent is this node (in nodes[] order), then its externalChildJurisdictions.
Comma separated; empty for a leaf node.
*/}}
{{- define "whistle.node.childJurisdictions" -}}
{{- $out := list -}}
{{- range $n := .root.Values.nodes -}}
  {{- if eq (default "" $n.parent) $.node.name -}}
    {{- $out = append $out $n.hostedJurisdiction -}}
  {{- end -}}
{{- end -}}
{{- range $c := (default (list) .node.externalChildJurisdictions) -}}
  {{- $out = append $out $c -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/* Secret holding a node's tls.crt, tls.key and ca.crt. */}}
{{- define "whistle.node.tlsSecret" -}}
{{- default (printf "%s-tls" (include "whistle.node.fullname" .)) .node.tlsSecret -}}
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
its own ancestor, only one root, hosted roots unique, topology/policy are JSON,
cert-manager has an issuer, exactly one source of the token issuers' JWKS (auth);
with a topology given, that the nodes partition it (every node's hosted root
lies directly in its parent's part, the root node hosts the topology root).
Fails with a message naming the node. Included from every node template.
*/}}
{{- define "whistle.validate" -}}
{{- $names := dict -}}
{{- $parents := dict -}}
{{- $hosted := dict -}}
{{- $roots := list -}}
{{- range $i, $n := .Values.nodes -}}
  {{- if hasKey $names $n.name -}}
    {{- fail (printf "nodes[%d].name: node %q is listed twice; node names must be unique" $i $n.name) -}}
  {{- end -}}
  {{- $_ := set $names $n.name $n.hostedJurisdiction -}}
  {{- $_ := set $parents $n.name (default "" $n.parent) -}}
  {{- if hasKey $hosted $n.hostedJurisdiction -}}
    {{- fail (printf "nodes[%d].hostedJurisdiction: %q is already hosted by node %q; every jurisdiction is hosted by exactly one node" $i $n.hostedJurisdiction (get $hosted $n.hostedJurisdiction)) -}}
  {{- end -}}
  {{- $_ := set $hosted $n.hostedJurisdiction $n.name -}}
  {{- if and $n.parent $n.parentAddress -}}
    {{- fail (printf "nodes[%d]: node %q sets both parent and parentAddress; use parent for a node of this release, parentAddress for one outside it" $i $n.name) -}}
  {{- end -}}
  {{- if not (or $n.parent $n.parentAddress) -}}{{- $roots = append $roots $n.name -}}{{- end -}}
{{- end -}}
{{- $external := dict -}}
{{- range $i, $n := .Values.nodes -}}
  {{- range $c := (default (list) $n.externalChildJurisdictions) -}}
    {{- if hasKey $hosted $c -}}
      {{- fail (printf "nodes[%d].externalChildJurisdictions: %q is hosted by node %q of this release; give that node parent: %s instead" $i $c (get $hosted $c) $n.name) -}}
    {{- end -}}
    {{- if hasKey $external $c -}}
      {{- fail (printf "nodes[%d].externalChildJurisdictions: %q is also an external child of node %q" $i $c (get $external $c)) -}}
    {{- end -}}
    {{- $_ := set $external $c $n.name -}}
  {{- end -}}
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
{{- if and .Values.tls.enabled .Values.tls.certManager.enabled (not (.Values.tls.certManager.issuerRef | default dict).name) -}}
  {{- fail "tls.certManager.issuerRef.name: required when tls.certManager.enabled is true (the cert-manager Issuer or ClusterIssuer that signs the node certificates; a CA issuer fills ca.crt)" -}}
{{- end -}}
{{- if .Values.topology -}}
  {{- include "whistle.validatePartition" (dict "root" $ "hosted" $hosted "names" $names) -}}
{{- end -}}
{{- $auth := .Values.auth | default dict -}}
{{- $sources := 0 -}}
{{- range $k := list "jwks" "existingSecret" "existingConfigMap" -}}
  {{- if get $auth $k -}}{{- $sources = add1 $sources -}}{{- end -}}
{{- end -}}
{{- if gt $sources 1 -}}
  {{- fail "auth: set only one of auth.jwks, auth.existingSecret and auth.existingConfigMap (the JWKS of the token issuers)" -}}
{{- end -}}
{{- if and (eq $sources 0) (not $auth.devHeaderIdentity) -}}
  {{- fail "auth: the nodes need the token issuers' keys: set auth.jwks (--set-file auth.jwks=./jwks.json), auth.existingSecret or auth.existingConfigMap; `whistlectl token keygen --dir D` makes a key pair. (auth.devHeaderIdentity=true runs without tokens: development only.)" -}}
{{- end -}}
{{- if $auth.jwks -}}
  {{- $parsed := fromJson $auth.jwks -}}
  {{- if or (hasKey $parsed "Error") (not (kindIs "slice" (get $parsed "keys"))) -}}
    {{- fail "auth.jwks: not a JWKS document ({\"keys\": [...]})" -}}
  {{- end -}}
{{- end -}}
{{- end -}}

{{/*
With a topology given: every hosted root and external child is a jurisdiction
of it; walking up from a node's hosted root, the first hosted root met is its
parent's (none for a node whose parent is outside the release); the root node
hosts the topology root; an external child lies directly in its node's part.
Together with unique hosted roots this makes the nodes an exact partition.
Takes {"root": $, "hosted": {root id: node name}, "names": {node name: root id}}.
*/}}
{{- define "whistle.validatePartition" -}}
{{- $root := .root -}}
{{- $hosted := .hosted -}}
{{- $names := .names -}}
{{- $topology := fromJson $root.Values.topology -}}
{{- $up := dict -}}
{{- $tops := list -}}
{{- range $j := (default (list) (get $topology "jurisdictions")) -}}
  {{- $p := default (default "" (get $j "parentId")) (get $j "parent_id") -}}
  {{- $_ := set $up (toString (get $j "id")) (toString $p) -}}
  {{- if not $p -}}{{- $tops = append $tops (toString (get $j "id")) -}}{{- end -}}
{{- end -}}
{{- $steps := until (len $up) -}}
{{- range $i, $n := $root.Values.nodes -}}
  {{- if not (hasKey $up $n.hostedJurisdiction) -}}
    {{- fail (printf "nodes[%d].hostedJurisdiction: %q is not a jurisdiction of the topology" $i $n.hostedJurisdiction) -}}
  {{- end -}}
  {{- /* nearest strict ancestor that is some node's hosted root */ -}}
  {{- $cur := get $up $n.hostedJurisdiction -}}
  {{- $owner := "" -}}
  {{- range $steps -}}
    {{- if and $cur (not $owner) -}}
      {{- if hasKey $hosted $cur -}}{{- $owner = $cur -}}{{- else -}}{{- $cur = get $up $cur -}}{{- end -}}
    {{- end -}}
  {{- end -}}
  {{- if $n.parent -}}
    {{- $want := get $names $n.parent -}}
    {{- $below := false -}}
    {{- $cur = get $up $n.hostedJurisdiction -}}
    {{- range $steps -}}
      {{- if and $cur (not $below) -}}
        {{- if eq $cur $want -}}{{- $below = true -}}{{- else -}}{{- $cur = get $up $cur -}}{{- end -}}
      {{- end -}}
    {{- end -}}
    {{- if not $below -}}
      {{- fail (printf "nodes[%d]: node %q hosts %q, which is not below %q, the hosted root of its parent %q" $i $n.name $n.hostedJurisdiction $want $n.parent) -}}
    {{- else if ne $owner $want -}}
      {{- fail (printf "nodes[%d]: node %q hosts %q, which lies in the part of node %q (hosting %q), not directly in the part of its parent %q; make %q its parent" $i $n.name $n.hostedJurisdiction (get $hosted $owner) $owner $n.parent (get $hosted $owner)) -}}
    {{- end -}}
  {{- else if $n.parentAddress -}}
    {{- if $owner -}}
      {{- fail (printf "nodes[%d]: node %q hosts %q, which lies in the part of node %q of this release; set parent: %s instead of parentAddress" $i $n.name $n.hostedJurisdiction (get $hosted $owner) (get $hosted $owner)) -}}
    {{- end -}}
  {{- else if not (has $n.hostedJurisdiction $tops) -}}
    {{- fail (printf "nodes[%d]: node %q has no parent, so it must host the topology root %s (the whole tree), not %q; set parent, or parentAddress for a parent outside this release" $i $n.name (join ", " $tops) $n.hostedJurisdiction) -}}
  {{- end -}}
  {{- range $c := (default (list) $n.externalChildJurisdictions) -}}
    {{- if not (hasKey $up $c) -}}
      {{- fail (printf "nodes[%d].externalChildJurisdictions: %q is not a jurisdiction of the topology" $i $c) -}}
    {{- end -}}
    {{- $cur := get $up $c -}}
    {{- $owner := "" -}}
    {{- range $steps -}}
      {{- if and $cur (not $owner) -}}
        {{- if hasKey $hosted $cur -}}{{- $owner = $cur -}}{{- else -}}{{- $cur = get $up $cur -}}{{- end -}}
      {{- end -}}
    {{- end -}}
    {{- if ne $owner $n.hostedJurisdiction -}}
      {{- fail (printf "nodes[%d].externalChildJurisdictions: %q is not below %q in the part node %q hosts itself" $i $c $n.hostedJurisdiction $n.name) -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- end -}}

{{/*
The volume source of the token issuers' JWKS (auth.*), mounted whole (no subPath,
so Kubernetes updates the file in place) with the key as jwks.json; empty when the
nodes run with development header identity and no JWKS.
*/}}
{{- define "whistle.jwksVolume" -}}
{{- $auth := .Values.auth | default dict -}}
{{- if $auth.existingSecret -}}
secret:
  secretName: {{ $auth.existingSecret }}
  defaultMode: 0444
  items:
    - key: {{ $auth.key | default "jwks.json" }}
      path: jwks.json
{{- else if or $auth.existingConfigMap $auth.jwks -}}
configMap:
  name: {{ $auth.existingConfigMap | default (printf "%s-jwks" (include "whistle.fullname" .)) }}
  items:
    - key: {{ if $auth.existingConfigMap }}{{ $auth.key | default "jwks.json" }}{{ else }}jwks.json{{ end }}
      path: jwks.json
{{- end -}}
{{- end -}}

{{/* The leaders' console (templates/console.yaml): names and labels. */}}
{{- define "whistle.console.fullname" -}}
{{- printf "%s-console" (include "whistle.fullname" .) -}}
{{- end -}}

{{- define "whistle.console.selectorLabels" -}}
{{ include "whistle.selectorLabels" . }}
app.kubernetes.io/component: console
{{- end -}}

{{- define "whistle.console.labels" -}}
{{ include "whistle.labels" . }}
app.kubernetes.io/component: console
{{- end -}}

{{/*
The node the console talks to: console.node, or the root node of the release (the
one without parent and parentAddress), or the first node when every node has a
parent outside the release. Fails when console.node names no node of nodes[].
*/}}
{{- define "whistle.console.node" -}}
{{- $name := .Values.console.node -}}
{{- $names := list -}}
{{- range $n := .Values.nodes -}}{{- $names = append $names $n.name -}}{{- end -}}
{{- if $name -}}
  {{- if not (has $name $names) -}}
    {{- fail (printf "console.node: %q is not a node of nodes[] (known: %s)" $name (join ", " $names)) -}}
  {{- end -}}
{{- else -}}
  {{- range $n := .Values.nodes -}}
    {{- if and (not $name) (not $n.parent) (not $n.parentAddress) -}}{{- $name = $n.name -}}{{- end -}}
  {{- end -}}
  {{- if not $name -}}{{- $name = (index .Values.nodes 0).name -}}{{- end -}}
{{- end -}}
{{- $name -}}
{{- end -}}
