{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "podscale.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "podscale.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "podscale.labels" -}}
{{ include "podscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "podscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "podscale.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The metrics adapter's name: the release's full name (cut to 55 characters so
  the whole stays a DNS label) and "-adapter". */}}
{{- define "podscale.adapter.fullname" -}}
{{- printf "%s-adapter" (include "podscale.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{/* The adapter's pods have their own app.kubernetes.io/name, so the controller's
  Deployment and its metrics Service (which select app.kubernetes.io/name: podscale)
  never select them. */}}
{{- define "podscale.adapter.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-adapter
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "podscale.adapter.labels" -}}
{{ include "podscale.adapter.selectorLabels" . }}
app.kubernetes.io/component: metrics-adapter
app.kubernetes.io/part-of: {{ .Chart.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "podscale.adapter.serviceAccountName" -}}
{{- if .Values.adapter.serviceAccount.create -}}
{{- default (include "podscale.adapter.fullname" .) .Values.adapter.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.adapter.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The APIServices' caBundle (base64 of PEM), from adapter.tls.caBundle given as the
  PEM itself (`--set-file adapter.tls.caBundle=ca.crt`) or already base64; anything
  else fails the render with what was expected. Empty when not set. */}}
{{- define "podscale.adapter.caBundle" -}}
{{- $raw := .Values.adapter.tls.caBundle | default "" -}}
{{- $ca := $raw | trim -}}
{{- if $ca -}}
{{- if contains "-----BEGIN CERTIFICATE-----" $ca -}}
{{- $raw | b64enc -}}
{{- else if contains "-----BEGIN CERTIFICATE-----" ($ca | b64dec) -}}
{{- $ca | nospace -}}
{{- else -}}
{{- fail "adapter.tls.caBundle: expected the PEM of the CA that signed adapter.tls.secretName's certificate (-----BEGIN CERTIFICATE-----...), or its base64" -}}
{{- end -}}
{{- end -}}
{{- end -}}
