// Read-only access to the audit table's account, deployed in that account's resource group.
param storageAccountName string
param identityPrincipalId string

var storageTableDataReader = '76199698-9eea-4c19-bc75-cec21354c6b6'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource tableReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, identityPrincipalId, storageTableDataReader)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataReader)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// primaryEndpoints.table ends with '/'; the app hands the value to TableClient as the account URL.
var tableEndpoint = account.properties.primaryEndpoints.table
output tableEndpoint string = endsWith(tableEndpoint, '/') ? substring(tableEndpoint, 0, length(tableEndpoint) - 1) : tableEndpoint
