// A hardened storage account: Entra ID only (no shared keys), TLS 1.2, HTTPS, no public blobs;
// closed to the internet when the VNet carries the traffic.
param name string
param location string
param tags object = {}
param vnetEnabled bool
param containerNames array = []
param tableNames array = []
@description('Containers whose blobs are deleted expireAfterDays after their last change.')
param expiringContainers array = []
param expireAfterDays int = 7
@description('Only for the audit account in the original setup: its connection string needs keys.')
param allowSharedKeyAccess bool = false

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: default action is Deny whenever vnetEnabled (the default); without the VNet, Flex Consumption has no fixed outbound addresses to allow.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  // Geo-redundant: the task hub and the audit data survive a regional outage; at this volume it costs cents.
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: allowSharedKeyAccess
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    // Without the VNet, Flex Consumption reaches storage from changing public addresses.
    networkAcls: {
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
      bypass: vnetEnabled ? 'None' : 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in containerNames: {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

output name string = account.name
output id string = account.id

// What a job could not clean up (it failed mid-way, or its clean-up did) does not stay forever.
resource retention 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (!empty(expiringContainers)) {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-job-results'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [for container in expiringContainers: '${container}/']
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: expireAfterDays
                }
              }
            }
          }
        }
      ]
    }
  }
}
