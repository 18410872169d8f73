// The Flex Consumption plan and function app, and every app setting the app is given (only here).
param name string
param planName string
param location string
param tags object = {}
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
@description('App integration subnet; empty when the VNet is off.')
param subnetId string = ''
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 100
param durableAlwaysReady int = 0
@description('Audit table account URL; empty in App Configuration mode.')
param auditTableEndpoint string = ''
@description('App Configuration endpoint; empty unless App Configuration mode.')
param appConfigEndpoint string = ''
param auditTableName string = 'audit'
param maxRangeDays int = 366
param partitionDays int = 1
param maxActivitiesInFlight int = 16
param maxActivitiesPerJob int = 16
param publicBaseUrl string = ''
@secure()
param idempotencySecret string

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone-redundant Flex keeps at least two always-ready instances billed around the clock, and not every Flex region has zones.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// Host storage (Durable task hub AuditQueryHub, deployment container) through the identity, no keys.
var baseAppSettings = [
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storageAccount.properties.primaryEndpoints.blob
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storageAccount.properties.primaryEndpoints.queue
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storageAccount.properties.primaryEndpoints.table
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
  // DefaultAzureCredential picks the user-assigned identity only when told its client id.
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'AUDIT_TABLE_NAME'
    value: auditTableName
  }
  {
    name: 'MAX_RANGE_DAYS'
    value: string(maxRangeDays)
  }
  {
    name: 'PARTITION_DAYS'
    value: string(partitionDays)
  }
  {
    name: 'MAX_ACTIVITIES_IN_FLIGHT'
    value: string(maxActivitiesInFlight)
  }
  {
    name: 'MAX_ACTIVITIES_PER_JOB'
    value: string(maxActivitiesPerJob)
  }
  // Finished jobs are purged from the task hub this many days after they were submitted, by
  // retention-timer-function on this schedule (NCRONTAB, UTC: daily at 03:00).
  {
    name: 'JOB_RETENTION_DAYS'
    value: '7'
  }
  {
    name: 'JOB_RETENTION_SCHEDULE'
    value: '0 0 3 * * *'
  }
  // The HMAC key of idempotent job ids; without it an Idempotency-Key gets a 503.
  {
    name: 'IDEMPOTENCY_SECRET'
    value: idempotencySecret
  }
  // The Python worker runs sync activities in a thread pool (cores + 4 threads by default):
  // as many threads as host.json lets activities run at once on one instance.
  {
    name: 'PYTHON_THREADPOOL_THREAD_COUNT'
    value: '16'
  }
]

// Exactly one way to the audit table: the app takes the first of these that is set.
var auditTableSettings = empty(appConfigEndpoint) ? [
  {
    name: 'AUDIT_TABLE_ENDPOINT'
    value: auditTableEndpoint
  }
] : [
  {
    name: 'AppConfigEndpoint'
    value: appConfigEndpoint
  }
]

var optionalAppSettings = empty(publicBaseUrl) ? [] : [
  {
    name: 'PUBLIC_BASE_URL'
    value: publicBaseUrl
  }
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the HTTP API is public by design (its clients call it); storage is what is private.
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys; required client certificates would break them.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales per event and has no numberOfWorkers to pin.
  // checkov:skip=CKV_AZURE_213: Flex Consumption does not support the platform health check (healthCheckPath).
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // The only place app settings are written.
      appSettings: concat(baseAppSettings, auditTableSettings, optionalAppSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        // orchestrator and activity triggers scale together as the `durable` group
        alwaysReady: (durableAlwaysReady > 0) ? [
          {
            name: 'durable'
            instanceCount: durableAlwaysReady
          }
        ] : []
      }
      // Flex takes the runtime here; FUNCTIONS_WORKER_RUNTIME/FUNCTIONS_EXTENSION_VERSION are not settings.
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
