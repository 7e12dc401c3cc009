{{/* Names and labels. */}}
{{- define "brama.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "brama.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "brama.labels" -}}
{{ include "brama.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Where the pod finds its files; the configuration refers to them. */}}
{{- define "brama.configDir" -}}/etc/brama/config{{- end -}}
{{- define "brama.pkiDir" -}}/etc/brama/pki{{- end -}}
{{- define "brama.storeDir" -}}/run/secrets/brama-store{{- end -}}
{{- define "brama.storeUrlFile" -}}{{ include "brama.storeDir" . }}/url{{- end -}}

{{- define "brama.configSecret" -}}
{{- .Values.config.existingSecret | default (printf "%s-config" (include "brama.fullname" .)) -}}
{{- end -}}
