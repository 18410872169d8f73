// audit-api on Azure Functions Flex Consumption, provisioned by `azd up`.
// Every identity-based path uses one user-assigned identity; no key or connection string is written.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region for everything; it must offer Flex Consumption.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Private networking: VNet integration plus private endpoints, storage closed to the internet.')
param vnetEnabled bool = true

@description('Object id of whoever runs azd (AZURE_PRINCIPAL_ID); empty skips the deployer role assignments.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('What principalId is: azd sets AZURE_PRINCIPAL_TYPE.')
param principalType string = 'User'

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@minValue(0)
@maxValue(10)
@description('Always-ready instances for the durable trigger group. Microsoft recommends 1 for Durable Functions on Flex (no cold start on a new job); 0 bills nothing while idle, and a job takes minutes anyway.')
param durableAlwaysReady int = 0

@description('Existing storage account holding the audit table; empty creates one.')
param auditStorageAccountName string = ''

@description('Resource group of auditStorageAccountName; empty means this deployment\'s group.')
param auditStorageResourceGroupName string = ''

param auditTableName string = 'audit'

@description('Original setup: App Configuration key -> Key Vault secret (a connection string) instead of AUDIT_TABLE_ENDPOINT.')
param useAppConfiguration bool = false

@description('Key Vault secret the App Configuration key points at; the operator creates it.')
param auditSecretName string = 'audit-storage-connection-string'

param maxRangeDays int = 366
param partitionDays int = 1
param maxActivitiesInFlight int = 16
param maxActivitiesPerJob int = 16

@secure()
@description('Keys the job ids derived from Idempotency-Key headers (HMAC): azd generates it once per environment and keeps it.')
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 40
    }
  }
})
param idempotencySecret string

@description('Public base URL for status links when a gateway fronts the app; empty uses the request host.')
param publicBaseUrl string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var resourceGroupName = 'rg-${environmentName}'
var functionAppName = 'func-api-${resourceToken}'
// Flex Consumption reads the package from this container, with the identity.
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'
// Each range's ids while a job runs (shared/range_results.py); deleted when the job ends.
var jobResultsContainerName = 'audit-job-ranges'
var createAuditStorage = empty(auditStorageAccountName)
var auditResourceGroupName = empty(auditStorageResourceGroupName) ? resourceGroupName : auditStorageResourceGroupName

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-api-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module network 'app/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    vnetEnabled: vnetEnabled
    containerNames: [
      deploymentContainerName
      jobResultsContainerName
    ]
    tableNames: []
    expiringContainers: [
      jobResultsContainerName
    ]
  }
}

module auditStorage 'app/storage.bicep' = if (createAuditStorage) {
  name: 'audit-storage'
  scope: rg
  params: {
    name: 'staudit${resourceToken}'
    location: location
    tags: tags
    vnetEnabled: vnetEnabled
    containerNames: []
    tableNames: [
      auditTableName
    ]
    // the original setup reads the account through a connection string, which needs its keys
    allowSharedKeyAccess: useAppConfiguration
  }
}

// Host storage is reached only through these endpoints when the VNet is on.
module storageEndpoints 'app/storage-endpoints.bicep' = if (vnetEnabled) {
  name: 'storage-endpoints'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    groupIds: [
      'blob'
      'queue'
      'table'
    ]
    subnetId: vnetEnabled ? network.outputs.privateEndpointSubnetId : ''
    privateDnsZoneIds: vnetEnabled ? network.outputs.privateDnsZoneIds : {}
    location: location
    tags: tags
  }
}

// An audit account made here is private too; an existing one is the operator's to make reachable.
module auditStorageEndpoints 'app/storage-endpoints.bicep' = if (vnetEnabled && createAuditStorage) {
  name: 'audit-storage-endpoints'
  scope: rg
  params: {
    storageAccountName: createAuditStorage ? auditStorage.outputs.name : ''
    groupIds: [
      'table'
    ]
    subnetId: vnetEnabled ? network.outputs.privateEndpointSubnetId : ''
    privateDnsZoneIds: vnetEnabled ? network.outputs.privateDnsZoneIds : {}
    location: location
    tags: tags
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityPrincipalId: identity.outputs.principalId
    principalId: principalId
    principalType: principalType
  }
}

// Read-only on the audit account, wherever it lives.
module auditAccess 'app/audit-access.bicep' = {
  name: 'audit-access'
  scope: resourceGroup(auditResourceGroupName)
  params: {
    storageAccountName: createAuditStorage ? auditStorage.outputs.name : auditStorageAccountName
    identityPrincipalId: identity.outputs.principalId
  }
}

module appConfig 'app/appconfig.bicep' = if (useAppConfiguration) {
  name: 'appconfig'
  scope: rg
  params: {
    appConfigName: 'appcs-${resourceToken}'
    keyVaultName: 'kv-${resourceToken}'
    secretName: auditSecretName
    identityPrincipalId: identity.outputs.principalId
    principalId: principalId
    principalType: principalType
    location: location
    tags: tags
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    subnetId: vnetEnabled ? network.outputs.appSubnetId : ''
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    durableAlwaysReady: durableAlwaysReady
    auditTableEndpoint: useAppConfiguration ? '' : auditAccess.outputs.tableEndpoint
    appConfigEndpoint: useAppConfiguration ? appConfig.outputs.endpoint : ''
    auditTableName: auditTableName
    maxRangeDays: maxRangeDays
    partitionDays: partitionDays
    maxActivitiesInFlight: maxActivitiesInFlight
    maxActivitiesPerJob: maxActivitiesPerJob
    publicBaseUrl: publicBaseUrl
    idempotencySecret: idempotencySecret
  }
  // The app must not start before its identity can read storage and publish telemetry.
  dependsOn: [
    rbac
    storageEndpoints
  ]
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = 'https://${api.outputs.defaultHostName}'
output AZURE_USER_ASSIGNED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
// Not named AUDIT_STORAGE_ACCOUNT_NAME: azd would feed it back as the "existing account" parameter.
output AZURE_AUDIT_STORAGE_ACCOUNT_NAME string = createAuditStorage ? auditStorage.outputs.name : auditStorageAccountName
output AZURE_KEY_VAULT_NAME string = useAppConfiguration ? appConfig.outputs.keyVaultName : ''
