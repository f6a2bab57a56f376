{{- define "link.labels" -}}
app.kubernetes.io/name: link
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}
{{- define "link.selector" -}}
app.kubernetes.io/name: link
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
