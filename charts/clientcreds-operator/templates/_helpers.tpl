{{/*
Chart name (nameOverride or the chart's name), cut to 63 characters.
*/}}
{{- define "clientcreds-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: fullnameOverride, or the release name when it already contains the chart name, or
<release>-<chart>; cut to 63 characters (a DNS label).
*/}}
{{- define "clientcreds-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "clientcreds-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable for the life of the release (Deployment selectors are immutable).
*/}}
{{- define "clientcreds-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clientcreds-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Standard labels on every object, plus commonLabels.
*/}}
{{- define "clientcreds-operator.labels" -}}
helm.sh/chart: {{ include "clientcreds-operator.chart" . }}
{{ include "clientcreds-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "clientcreds-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "clientcreds-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
"true" when leader election is on: asked for, or forced by more than one replica; "" otherwise.
Use as: {{ if include "clientcreds-operator.leaderElection" . }}
*/}}
{{- define "clientcreds-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/*
The image reference: repository@digest, or repository:tag (tag defaults to the appVersion).
*/}}
{{- define "clientcreds-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Name of the metrics Service.
*/}}
{{- define "clientcreds-operator.metricsServiceName" -}}
{{- printf "%s-metrics" (include "clientcreds-operator.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/*
The name of the Role for recovery Secrets in the release namespace (63 characters at most).
*/}}
{{- define "clientcreds-operator.recoveryName" -}}
{{- printf "%s-recovery" (include "clientcreds-operator.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/*
Name of the leader-election Role and RoleBinding.
*/}}
{{- define "clientcreds-operator.leaderElectionName" -}}
{{- printf "%s-leader-election" (include "clientcreds-operator.fullname" . | trunc 47 | trimSuffix "-") }}
{{- end }}

{{/*
The namespaces the operator watches, as a JSON list: `watchNamespaces`, or with
`rbac.scope: namespace` and no list the release namespace; empty: every namespace.
*/}}
{{- define "clientcreds-operator.watchNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- toJson .Values.watchNamespaces -}}
{{- else if eq .Values.rbac.scope "namespace" -}}
{{- toJson (list .Release.Namespace) -}}
{{- else -}}
[]
{{- end -}}
{{- end }}
