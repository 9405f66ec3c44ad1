/**
 * Structural validation of the Kubernetes objects plumb ships, written from the Kubernetes API
 * reference for the kinds and fields deploy/ uses (no schema validator can be installed here,
 * and kubectl validates only against a live API server). Every object is checked for its
 * apiVersion/kind pair, unknown fields (a typo is an error, as with `kubectl --validate=strict`),
 * value types, enumerations, required fields, and the name formats the API server enforces.
 * A field deploy/ starts to use must be added here first.
 */

type Schema =
  | 'string'
  | 'int'
  | 'bool'
  | 'quantity'
  | 'intOrString'
  | 'dnsLabel'
  | 'dnsSubdomain'
  | 'portName'
  | 'labelMap'
  | { enum: readonly string[] }
  | { list: Schema; minItems?: number }
  | { map: Schema }
  | { obj: Record<string, Schema>; required?: readonly string[]; oneOf?: readonly string[] }
  | (() => Schema);

const str = 'string' as const;
const int = 'int' as const;
const bool = 'bool' as const;
const obj = (fields: Record<string, Schema>, required: readonly string[] = [], oneOf?: readonly string[]): Schema => ({ obj: fields, required, oneOf });
const list = (of: Schema, minItems?: number): Schema => ({ list: of, minItems });
const map = (of: Schema): Schema => ({ map: of });
const oneOfStrings = (...values: string[]): Schema => ({ enum: values });

const ObjectMeta = obj(
  {
    name: 'dnsSubdomain',
    namespace: 'dnsLabel',
    labels: 'labelMap',
    annotations: map(str),
  },
  ['name'],
);

const LabelSelector = obj({
  matchLabels: 'labelMap',
  matchExpressions: list(obj({ key: str, operator: oneOfStrings('In', 'NotIn', 'Exists', 'DoesNotExist'), values: list(str) }, ['key', 'operator'])),
});

const Probe = obj(
  {
    httpGet: obj({ path: str, port: 'intOrString', host: str, scheme: oneOfStrings('HTTP', 'HTTPS'), httpHeaders: list(obj({ name: str, value: str }, ['name', 'value'])) }, ['port']),
    tcpSocket: obj({ port: 'intOrString', host: str }, ['port']),
    exec: obj({ command: list(str, 1) }, ['command']),
    initialDelaySeconds: int,
    periodSeconds: int,
    timeoutSeconds: int,
    failureThreshold: int,
    successThreshold: int,
    terminationGracePeriodSeconds: int,
  },
  [],
  ['httpGet', 'tcpSocket', 'exec'],
);

const SeccompProfile = obj({ type: oneOfStrings('RuntimeDefault', 'Unconfined', 'Localhost'), localhostProfile: str }, ['type']);

const EnvVar = obj(
  {
    name: str,
    value: str,
    valueFrom: obj(
      {
        fieldRef: obj({ fieldPath: str, apiVersion: str }, ['fieldPath']),
        secretKeyRef: obj({ name: str, key: str, optional: bool }, ['key']),
        configMapKeyRef: obj({ name: str, key: str, optional: bool }, ['key']),
        resourceFieldRef: obj({ resource: str, containerName: str, divisor: 'quantity' }, ['resource']),
      },
      [],
      ['fieldRef', 'secretKeyRef', 'configMapKeyRef', 'resourceFieldRef'],
    ),
  },
  ['name'],
);

const Container = obj(
  {
    name: 'dnsLabel',
    image: str,
    imagePullPolicy: oneOfStrings('Always', 'IfNotPresent', 'Never'),
    command: list(str),
    args: list(str),
    workingDir: str,
    env: list(EnvVar),
    ports: list(
      obj({ name: 'portName', containerPort: int, hostPort: int, hostIP: str, protocol: oneOfStrings('TCP', 'UDP', 'SCTP') }, ['containerPort']),
    ),
    livenessProbe: Probe,
    readinessProbe: Probe,
    lifecycle: obj({ preStop: obj({ exec: obj({ command: list(str, 1) }, ['command']), httpGet: obj({ path: str, port: 'intOrString' }, ['port']) }, [], ['exec', 'httpGet']), postStart: obj({ exec: obj({ command: list(str, 1) }, ['command']) }) }),
    startupProbe: Probe,
    resources: obj({ requests: map('quantity'), limits: map('quantity') }),
    securityContext: obj({
      runAsUser: int,
      runAsGroup: int,
      runAsNonRoot: bool,
      privileged: bool,
      allowPrivilegeEscalation: bool,
      readOnlyRootFilesystem: bool,
      capabilities: obj({ add: list(str), drop: list(str) }),
      seccompProfile: SeccompProfile,
    }),
    volumeMounts: list(
      obj(
        {
          name: str,
          mountPath: str,
          readOnly: bool,
          subPath: str,
          mountPropagation: oneOfStrings('None', 'HostToContainer', 'Bidirectional'),
        },
        ['name', 'mountPath'],
      ),
    ),
    terminationMessagePolicy: oneOfStrings('File', 'FallbackToLogsOnError'),
  },
  ['name', 'image'],
);

const KeyToPath = obj({ key: str, path: str, mode: int }, ['key', 'path']);

const Volume = obj(
  {
    name: 'dnsLabel',
    configMap: obj({ name: str, items: list(KeyToPath), defaultMode: int, optional: bool }, ['name']),
    secret: obj({ secretName: str, items: list(KeyToPath), defaultMode: int, optional: bool }, ['secretName']),
    hostPath: obj({ path: str, type: oneOfStrings('', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice') }, ['path']),
    emptyDir: obj({ medium: oneOfStrings('', 'Memory'), sizeLimit: 'quantity' }),
    persistentVolumeClaim: obj({ claimName: str, readOnly: bool }, ['claimName']),
  },
  ['name'],
  ['configMap', 'secret', 'hostPath', 'emptyDir', 'persistentVolumeClaim'],
);

const PodAffinityTerm = obj({ topologyKey: str, labelSelector: LabelSelector, namespaces: list(str) }, ['topologyKey']);
const Affinity = obj({
  podAntiAffinity: obj({
    preferredDuringSchedulingIgnoredDuringExecution: list(obj({ weight: int, podAffinityTerm: PodAffinityTerm }, ['weight', 'podAffinityTerm'])),
    requiredDuringSchedulingIgnoredDuringExecution: list(PodAffinityTerm),
  }),
});

const PodSpec = obj(
  {
    containers: list(Container, 1),
    initContainers: list(Container),
    volumes: list(Volume),
    serviceAccountName: 'dnsSubdomain',
    automountServiceAccountToken: bool,
    terminationGracePeriodSeconds: int,
    tolerations: list(obj({ key: str, operator: oneOfStrings('Exists', 'Equal'), value: str, effect: oneOfStrings('NoSchedule', 'PreferNoSchedule', 'NoExecute'), tolerationSeconds: int })),
    nodeSelector: map(str),
    affinity: Affinity,
    securityContext: obj({ runAsUser: int, runAsGroup: int, runAsNonRoot: bool, fsGroup: int, supplementalGroups: list(int), seccompProfile: SeccompProfile }),
    imagePullSecrets: list(obj({ name: str }, ['name'])),
    priorityClassName: str,
    hostNetwork: bool,
    dnsPolicy: oneOfStrings('ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'),
  },
  ['containers'],
);

const PodTemplateSpec = obj({ metadata: obj({ labels: 'labelMap', annotations: map(str) }), spec: PodSpec }, ['metadata', 'spec']);

const RollingUpdate = obj({ maxUnavailable: 'intOrString', maxSurge: 'intOrString' });

const HpaPolicy = obj({
  stabilizationWindowSeconds: int,
  selectPolicy: oneOfStrings('Max', 'Min', 'Disabled'),
  policies: list(obj({ type: oneOfStrings('Pods', 'Percent'), value: int, periodSeconds: int }, ['type', 'value', 'periodSeconds'])),
});

/** apiVersion/kind → the fields beside apiVersion, kind and metadata. */
const KINDS: Record<string, Record<string, Schema>> = {
  'v1/Namespace': {},
  'v1/ServiceAccount': { automountServiceAccountToken: bool, imagePullSecrets: list(obj({ name: str }, ['name'])) },
  'v1/ConfigMap': { data: map(str), binaryData: map(str), immutable: bool },
  'v1/Secret': { type: str, data: map(str), stringData: map(str), immutable: bool },
  'v1/Service': {
    spec: obj(
      {
        type: oneOfStrings('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'),
        selector: 'labelMap',
        clusterIP: str,
        ports: list(obj({ name: 'portName', port: int, targetPort: 'intOrString', protocol: oneOfStrings('TCP', 'UDP', 'SCTP'), nodePort: int, appProtocol: str }, ['port']), 1),
        sessionAffinity: oneOfStrings('None', 'ClientIP'),
        publishNotReadyAddresses: bool,
        internalTrafficPolicy: oneOfStrings('Cluster', 'Local'),
      },
      ['ports'],
    ),
  },
  'apps/v1/DaemonSet': {
    spec: obj({ selector: LabelSelector, template: PodTemplateSpec, updateStrategy: obj({ type: oneOfStrings('RollingUpdate', 'OnDelete'), rollingUpdate: RollingUpdate }), minReadySeconds: int, revisionHistoryLimit: int }, [
      'selector',
      'template',
    ]),
  },
  'apps/v1/Deployment': {
    spec: obj(
      {
        replicas: int,
        selector: LabelSelector,
        template: PodTemplateSpec,
        strategy: obj({ type: oneOfStrings('RollingUpdate', 'Recreate'), rollingUpdate: RollingUpdate }),
        minReadySeconds: int,
        revisionHistoryLimit: int,
        progressDeadlineSeconds: int,
      },
      ['selector', 'template'],
    ),
  },
  'apps/v1/StatefulSet': {
    spec: obj(
      {
        replicas: int,
        serviceName: str,
        selector: LabelSelector,
        template: PodTemplateSpec,
        podManagementPolicy: oneOfStrings('OrderedReady', 'Parallel'),
        updateStrategy: obj({ type: oneOfStrings('RollingUpdate', 'OnDelete'), rollingUpdate: obj({ partition: int, maxUnavailable: 'intOrString' }) }),
        volumeClaimTemplates: list(
          obj(
            {
              metadata: obj({ name: 'dnsSubdomain', labels: 'labelMap', annotations: map(str) }, ['name']),
              spec: obj(
                {
                  accessModes: list(oneOfStrings('ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'), 1),
                  storageClassName: str,
                  volumeMode: oneOfStrings('Filesystem', 'Block'),
                  resources: obj({ requests: map('quantity'), limits: map('quantity') }, ['requests']),
                },
                ['accessModes', 'resources'],
              ),
            },
            ['metadata', 'spec'],
          ),
        ),
        persistentVolumeClaimRetentionPolicy: obj({ whenDeleted: oneOfStrings('Retain', 'Delete'), whenScaled: oneOfStrings('Retain', 'Delete') }),
        minReadySeconds: int,
        revisionHistoryLimit: int,
      },
      ['selector', 'template', 'serviceName'],
    ),
  },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    spec: obj(
      {
        scaleTargetRef: obj({ apiVersion: str, kind: str, name: str }, ['kind', 'name']),
        minReplicas: int,
        maxReplicas: int,
        metrics: list(
          obj(
            {
              type: oneOfStrings('Resource', 'Pods', 'Object', 'External', 'ContainerResource'),
              resource: obj({ name: str, target: obj({ type: oneOfStrings('Utilization', 'AverageValue', 'Value'), averageUtilization: int, averageValue: 'quantity', value: 'quantity' }, ['type']) }, ['name', 'target']),
            },
            ['type'],
          ),
        ),
        behavior: obj({ scaleUp: HpaPolicy, scaleDown: HpaPolicy }),
      },
      ['scaleTargetRef', 'maxReplicas'],
    ),
  },
  'rbac.authorization.k8s.io/v1/ClusterRole': {
    rules: list(obj({ apiGroups: list(str), resources: list(str), verbs: list(str, 1), resourceNames: list(str), nonResourceURLs: list(str) }, ['verbs'])),
  },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': {
    roleRef: obj({ apiGroup: str, kind: oneOfStrings('ClusterRole', 'Role'), name: str }, ['apiGroup', 'kind', 'name']),
    subjects: list(obj({ kind: oneOfStrings('ServiceAccount', 'User', 'Group'), name: str, namespace: str, apiGroup: str }, ['kind', 'name'])),
  },
  'policy/v1/PodDisruptionBudget': {
    spec: obj({ minAvailable: 'intOrString', maxUnavailable: 'intOrString', selector: LabelSelector, unhealthyPodEvictionPolicy: oneOfStrings('IfHealthyBudget', 'AlwaysAllow') }),
  },
};

export const SUPPORTED_KINDS = Object.keys(KINDS);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?$/;

function check(value: unknown, schema: Schema, path: string, errors: string[]): void {
  if (typeof schema === 'function') return check(value, schema(), path, errors);
  const fail = (why: string): void => {
    errors.push(`${path}: ${why} (got ${JSON.stringify(value)})`);
  };
  if (typeof schema === 'string') {
    switch (schema) {
      case 'string':
        if (typeof value !== 'string') fail('expected a string');
        return;
      case 'int':
        if (!Number.isInteger(value)) fail('expected an integer');
        return;
      case 'bool':
        if (typeof value !== 'boolean') fail('expected a boolean');
        return;
      case 'quantity':
        if (!((typeof value === 'string' && QUANTITY.test(value)) || Number.isFinite(value))) fail('expected a quantity like 100m, 128Mi');
        return;
      case 'intOrString':
        if (!(Number.isInteger(value) || (typeof value === 'string' && value !== ''))) fail('expected an integer or a name');
        return;
      case 'dnsLabel':
        if (typeof value !== 'string' || value.length > 63 || !DNS_LABEL.test(value)) fail('expected a DNS label (lower case, digits, "-", at most 63)');
        return;
      case 'dnsSubdomain':
        if (typeof value !== 'string' || value.length > 253 || !DNS_SUBDOMAIN.test(value)) fail('expected a DNS subdomain name');
        return;
      case 'portName':
        if (typeof value !== 'string' || value.length > 15 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value) || !/[a-z]/.test(value)) fail('expected a port name (IANA_SVC_NAME, at most 15)');
        return;
      case 'labelMap':
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('expected a map of labels');
        for (const [k, v] of Object.entries(value)) {
          if (!LABEL_KEY.test(k)) errors.push(`${path}.${k}: not a valid label key`);
          if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) errors.push(`${path}.${k}: not a valid label value (got ${JSON.stringify(v)})`);
        }
        return;
    }
  }
  if ('enum' in schema) {
    if (typeof value !== 'string' || !schema.enum.includes(value)) fail(`expected one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`);
    return;
  }
  if ('list' in schema) {
    if (!Array.isArray(value)) return fail('expected a list');
    if (schema.minItems !== undefined && value.length < schema.minItems) fail(`expected at least ${schema.minItems} item(s)`);
    value.forEach((v, i) => check(v, schema.list, `${path}[${i}]`, errors));
    return;
  }
  if ('map' in schema) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('expected a map');
    for (const [k, v] of Object.entries(value)) check(v, schema.map, `${path}.${k}`, errors);
    return;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('expected an object');
  const o = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    const field = schema.obj[k];
    if (field === undefined) errors.push(`${path}.${k}: unknown field`);
    else check(v, field, `${path}.${k}`, errors);
  }
  for (const r of schema.required ?? []) if (!(r in o)) errors.push(`${path}.${r}: required`);
  if (schema.oneOf) {
    const present = schema.oneOf.filter((k) => k in o);
    if (present.length !== 1) errors.push(`${path}: exactly one of ${schema.oneOf.join(', ')} (got ${present.length === 0 ? 'none' : present.join(', ')})`);
  }
}

/** Every structural problem of one object, each with its path; empty when it is valid. */
export function validateObject(object: Record<string, unknown>, where = ''): string[] {
  const kind = `${String(object.apiVersion)}/${String(object.kind)}`;
  const at = `${where}${where ? ' ' : ''}${String(object.kind)}/${String((object.metadata as { name?: unknown } | undefined)?.name)}`;
  const fields = KINDS[kind];
  if (fields === undefined) return [`${at}: ${kind} is not a kind and version deploy/ uses (${SUPPORTED_KINDS.join(', ')})`];
  const errors: string[] = [];
  check(object, obj({ apiVersion: str, kind: str, metadata: ObjectMeta, ...fields }, ['apiVersion', 'kind', 'metadata']), at, errors);
  return errors;
}
