// Optional original setup: App Configuration key -> Key Vault reference -> secret holding the audit
// account's connection string. The secret itself is never in a template: the operator adds it.
param appConfigName string
param keyVaultName string
param secretName string
param identityPrincipalId string
@description('Deployer; needs data-plane rights for ARM to write the key-value (local auth is off).')
param principalId string
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'
param location string
param tags object = {}

var appConfigurationDataReader = '516239f1-63e1-4d78-a4de-a74fb236a071'
var appConfigurationDataOwner = '5ae67dd6-50cb-40e7-96ff-dc2bfa4b606b'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var hasDeployer = !empty(principalId)

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: optional legacy mode: the operator adds the secret from outside, and without the VNet the app has no fixed addresses; access is Entra RBAC only.
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109; the recommended mode (AUDIT_TABLE_ENDPOINT) creates no vault.
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    // Purge protection cannot be undone: `azd down --purge` then leaves the name taken for the
    // retention period, so a new `azd up` needs another environment name (README).
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
  }
}

resource store 'Microsoft.AppConfiguration/configurationStores@2024-05-01' = {
  name: appConfigName
  location: location
  tags: tags
  sku: {
    name: 'standard'
  }
  properties: {
    disableLocalAuth: true
    // no purge protection: `azd down --purge` frees the name for the next `azd up`
    enablePurgeProtection: false
    softDeleteRetentionInDays: 1
    // With local auth off, ARM writes key-values as the deployer (who needs a data-plane role).
    dataPlaneProxy: {
      authenticationMode: 'Pass-through'
      privateLinkDelegation: 'Disabled'
    }
  }
}

resource deployerDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasDeployer) {
  name: guid(store.id, principalId, appConfigurationDataOwner)
  scope: store
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', appConfigurationDataOwner)
    principalId: principalId
    principalType: principalType
  }
}

// The name is key$label: the app reads key storage-account-connection-string, label async-http-api.
// Written as the deployer; a first provision can meet a 403 while that role propagates: run
// `azd provision` again.
resource secretReference 'Microsoft.AppConfiguration/configurationStores/keyValues@2024-05-01' = if (hasDeployer) {
  parent: store
  name: 'storage-account-connection-string$async-http-api'
  properties: {
    contentType: 'application/vnd.microsoft.appconfig.keyvaultref+json;charset=utf-8'
    value: string({
      uri: '${vault.properties.vaultUri}secrets/${secretName}'
    })
  }
  dependsOn: [
    deployerDataOwner
  ]
}

// The deployer writes the secret (the connection string) itself: RBAC vaults give no one that by default.
resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasDeployer) {
  name: guid(vault.id, principalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: principalId
    principalType: principalType
  }
}

resource configReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(store.id, identityPrincipalId, appConfigurationDataReader)
  scope: store
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', appConfigurationDataReader)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = store.properties.endpoint
output keyVaultName string = vault.name
