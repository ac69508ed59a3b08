{{- define "guardrail-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "guardrail-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "guardrail-operator.labels" -}}
app.kubernetes.io/name: {{ include "guardrail-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "guardrail-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "guardrail-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "guardrail-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "guardrail-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "guardrail-operator.webhookService" -}}
{{- printf "%s-webhook" (include "guardrail-operator.fullname" .) -}}
{{- end -}}

{{- define "guardrail-operator.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "guardrail-operator.fullname" .) -}}
{{- end -}}

{{- define "guardrail-operator.webhookConfig" -}}
{{- printf "%s.guardrails.dev" (include "guardrail-operator.fullname" .) -}}
{{- end -}}
